"""Real IMAP clients we did not write, against the IMAP server: mbsync (isync) syncing both
ways, offlineimap3 and fetchmail fetching (Debian's packages, installed by make test)."""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from tests.functional.test_imap import BOB, RAW, _file
from tests.imap_support import ACCOUNTS, RunningImap, running_imap

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("mbsync", "offlineimap", "fetchmail")),
    reason="isync, offlineimap3 and fetchmail come with make test (system-packages)")


def _fingerprint(cert_file: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(cert_file.read_text())
    return hashlib.sha512(der).hexdigest()


def _mbsync(imap: RunningImap, root: Path) -> subprocess.CompletedProcess[str]:
    config = root / "mbsyncrc"
    config.write_text(f"""IMAPAccount mailpipe
Host 127.0.0.1
Port {imap.imaps_port}
User {BOB}
Pass {ACCOUNTS[BOB]}
SSLType IMAPS
CertificateFile {imap.cert_file}

IMAPStore remote
Account mailpipe

MaildirStore local
Path {root}/mail/
Inbox {root}/mail/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    result = subprocess.run(["mbsync", "-c", str(config), "-a"], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _maildir(root: Path) -> dict[str, list[str]]:
    """Folder -> its messages' flags (the part after ":2,"), as the files say."""
    return {folder.name: sorted(path.name.rsplit(":2,", 1)[-1]
                                for path in (*(folder / "cur").iterdir(),
                                             *(folder / "new").iterdir()))
            for folder in sorted((root / "mail").iterdir()) if folder.is_dir()}


def _server(imap: RunningImap) -> dict[str, list[frozenset[str]]]:
    mailboxes = imap.storage.mailboxes
    return {folder.name: sorted((entry.flags for entry in mailboxes.list_by_uid(
                BOB, folder.id, 1, 1000)), key=sorted)
            for folder in mailboxes.folders(BOB)}


def test_mbsync_syncs_both_ways_and_a_second_sync_changes_nothing(tmp_path: Path) -> None:
    with running_imap() as imap:
        read, unread, doomed = _file(imap), _file(imap), _file(imap)
        imap.storage.mailboxes.update(BOB, read.message_id,
                                      lambda m: replace(m, flags=m.flags | {"seen"}))
        (tmp_path / "mail").mkdir()
        _mbsync(imap, tmp_path)
        assert _maildir(tmp_path)["INBOX"] == ["", "", "S"]
        assert {"Sent", "Drafts", "Trash", "Junk", "Archive"} <= set(_maildir(tmp_path))

        # On the near side: a new folder with a message, a flag, a deletion.
        inbox = tmp_path / "mail" / "INBOX"
        files = {path.name.split(",U=")[1].split(":")[0]: path
                 for path in (*(inbox / "cur").iterdir(), *(inbox / "new").iterdir())}
        files[str(unread.uid)].rename(inbox / "cur" / (files[str(unread.uid)].name.split(":")[0]
                                                       + ":2,FS"))
        files[str(doomed.uid)].unlink()
        projects = tmp_path / "mail" / "Projects"
        for part in ("cur", "new", "tmp"):
            (projects / part).mkdir(parents=True)
        (projects / "new" / "1700000000.1.local").write_bytes(RAW.replace(b"\r\n", b"\n"))
        _mbsync(imap, tmp_path)

        server = _server(imap)
        assert server["Inbox"] == sorted([frozenset({"seen"}), frozenset({"seen", "flagged"})],
                                         key=sorted)
        assert server["Projects"] == [frozenset()]
        before = (_maildir(tmp_path), server)
        _mbsync(imap, tmp_path)
        assert (_maildir(tmp_path), _server(imap)) == before


def test_offlineimap_fetches_the_same_set(tmp_path: Path) -> None:
    with running_imap() as imap:
        for _ in range(3):
            _file(imap)
        _file(imap, folder="Archive")
        config = tmp_path / "offlineimaprc"
        config.write_text(f"""[general]
accounts = mailpipe
metadata = {tmp_path}/metadata

[Account mailpipe]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {tmp_path}/mail

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {imap.imaps_port}
remoteuser = {BOB}
remotepass = {ACCOUNTS[BOB]}
ssl = yes
# The test certificate names hamburger.edu, not 127.0.0.1: pinned by its fingerprint.
cert_fingerprint = {_fingerprint(imap.cert_file)}
tls_level = tls_secure
ssl_version = tls1_2
""")
        result = subprocess.run(["offlineimap", "-c", str(config), "-o", "-u", "basic"],
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        counts = {folder.name: len(list((folder / "cur").iterdir()))
                  + len(list((folder / "new").iterdir()))
                  for folder in (tmp_path / "mail").iterdir() if (folder / "cur").is_dir()}
        assert counts["INBOX"] == 3 and counts["Archive"] == 1


def test_fetchmail_in_keep_mode_fetches_and_leaves_the_mail(tmp_path: Path) -> None:
    with running_imap() as imap:
        subjects = []
        for number in range(2):
            raw = RAW.replace(b"Subject: Bonjour", f"Subject: fetch {number}".encode())
            _file(imap, raw=raw)
            subjects.append(f"Subject: fetch {number}")
        delivered = tmp_path / "delivered"
        rc = tmp_path / "fetchmailrc"
        rc.write_text(f"""poll 127.0.0.1 service {imap.imaps_port} protocol IMAP
  user "{BOB}" password "{ACCOUNTS[BOB]}" is "root" here
  ssl sslcertck sslcertfile "{imap.cert_file}" sslcommonname "hamburger.edu"
  keep fetchall mda "cat >> {delivered}"
""")
        rc.chmod(0o600)
        result = subprocess.run(
            ["fetchmail", "-f", str(rc), "--nodetach", "--nosyslog", "-v"],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "HOME": str(tmp_path)})
        assert result.returncode == 0, result.stdout + result.stderr
        text = delivered.read_text()
        assert all(subject in text for subject in subjects)
        assert imap.storage.mailboxes.folder_named(BOB, "Inbox").total == 2  # kept
