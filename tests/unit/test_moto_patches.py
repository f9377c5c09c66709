"""The local runtime's moto patches: applied only to a moto they were written for, and
undone after a test that wanted them."""

from __future__ import annotations

import pytest
from moto.dynamodb.models import DynamoDBBackend

from mailpipe.local import moto_patches


@pytest.mark.parametrize("version", ["5.0.10", "5.2.5", "5.99.0"])
def test_the_moto_releases_the_patches_know_are_accepted(version):
    moto_patches.check_moto_version(version)


@pytest.mark.parametrize("version", ["4.2.14", "6.0.0", "7.1"])
def test_another_moto_is_refused_with_what_to_do(version):
    with pytest.raises(moto_patches.UnsupportedMoto) as refused:
        moto_patches.check_moto_version(version)
    assert f"moto {version} is installed" in str(refused.value)
    assert "pip install" in str(refused.value)


def test_patches_are_undone_after_the_context():
    original_query = DynamoDBBackend.query
    with moto_patches.patched():
        assert DynamoDBBackend.query is not original_query
        assert DynamoDBBackend.transact_write_items is moto_patches.transact_write_items
    assert DynamoDBBackend.query is original_query
    assert DynamoDBBackend.transact_write_items is not moto_patches.transact_write_items
