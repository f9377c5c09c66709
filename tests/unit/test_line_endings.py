import pytest

from edge.smtp.handler import has_bare_line_ending


@pytest.mark.parametrize("content", [b"a\r\nb\r\n", b"", b"no line end", b"\r\n\r\n"])
def test_crlf_only_content_is_clean(content):
    assert not has_bare_line_ending(content)


@pytest.mark.parametrize("content", [b"a\nb\r\n", b"a\rb\r\n", b"a\r\r\n", b"\n\r", b"x\n"])
def test_any_lone_cr_or_lf_is_bare(content):
    assert has_bare_line_ending(content)
