"""A private Dovecot (Debian's dovecot-imapd) on the loopback, from its own configuration
in a temporary folder: the reference IMAP server for the differential test and the
benchmarks. Any user logs in with the password "pass"; mail is Maildir under the folder."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mailpipe.local.launcher import free_ports

PASSWORD = "pass"


@dataclass(frozen=True)
class Dovecot:
    imap_port: int
    imaps_port: int
    process: subprocess.Popen[bytes]
    folder: Path

    def pids(self) -> list[int]:
        """The master and every process it started (login, imap, auth, anvil, log...)."""
        found = [self.process.pid]
        for pid in found:
            children = Path(f"/proc/{pid}/task/{pid}/children")
            if children.exists():
                found += [int(child) for child in children.read_text().split()]
        return found


@contextmanager
def private_dovecot(certificate: tuple[Path, Path] | None = None,
                    extra: str = "") -> Iterator[Dovecot]:
    """`certificate` (cert, key): also an implicit-TLS listener, as mailpipe's 993."""
    folder = Path(tempfile.mkdtemp(prefix="mailpipe-dovecot-"))
    folder.chmod(0o755)  # its mail processes run as nobody
    home = folder / "home"
    home.mkdir()
    home.chmod(0o777)
    imap_port, imaps_port = free_ports(2)
    tls = (f"ssl = yes\nssl_cert = <{certificate[0]}\nssl_key = <{certificate[1]}\n"
           if certificate else "ssl = no\n")
    config = folder / "dovecot.conf"
    config.write_text(f"""base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/log
protocols = imap
listen = 127.0.0.1
{tls}disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={home}/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port if certificate else 0}
  }}
}}
service anvil {{
  chroot =
}}
{extra}""")
    process = subprocess.Popen(["dovecot", "-c", str(config), "-F"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", imap_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    log = folder / "log"
                    raise RuntimeError(log.read_text() if log.exists()
                                       else "dovecot did not start") from None
                time.sleep(0.1)
        yield Dovecot(imap_port, imaps_port, process, folder)
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
