"""The tests' private DNS: dnsmasq (Debian's dnsmasq-base) on loopback, serving the test
zones' MX, A, TXT and SRV records, and two broken servers for the fault tests. No test asks
the Internet: every resolver under test is pointed here (`--dns HOST:PORT`).

    with Dnsmasq(Zone(txt={"crepes.fr": ["v=spf1 ip4:127.0.0.0/8 -all"]})) as dns:
        ... mailpipe up --dns {dns.address} ...
        dns.publish(zone)  # new records: dnsmasq starts again on the same port
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from mailpipe.local.launcher import free_port

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


@dataclass
class Zone:
    """Records by owner name. A TXT value longer than 255 bytes is split into strings as a
    zone file would (DKIM's RSA keys are ~400 characters)."""

    txt: dict[str, list[str]] = field(default_factory=dict)
    mx: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # name -> (pref, host)
    a: dict[str, list[str]] = field(default_factory=dict)  # name -> IPv4 and IPv6 addresses
    ptr: dict[str, str] = field(default_factory=dict)  # address -> name
    cname: dict[str, str] = field(default_factory=dict)
    # name -> (priority, weight, port, target)
    srv: dict[str, list[tuple[int, int, int, str]]] = field(default_factory=dict)

    def add_txt(self, name: str, value: str) -> Zone:
        self.txt.setdefault(name.rstrip("."), []).append(value)
        return self

    def config(self) -> str:
        lines = ["no-resolv", "no-hosts", "local=/#/",  # every other name: NXDOMAIN
                 "no-negcache"]
        for name, values in self.txt.items():
            for value in values:
                data = value.encode()
                chunks = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
                quoted = ",".join('"' + chunk.decode().replace('"', '\\"') + '"'
                                  for chunk in chunks)
                lines.append(f"txt-record={name},{quoted}")
        for name, hosts in self.mx.items():
            lines.extend(f"mx-host={name},{host},{preference}" for preference, host in hosts)
        for name, addresses in self.a.items():
            lines.append(f"host-record={name},{','.join(addresses)}")
        for address, name in self.ptr.items():
            lines.append(f"ptr-record={_reverse(address)},{name}")
        for alias, target in self.cname.items():
            lines.append(f"cname={alias},{target}")
        for name, services in self.srv.items():
            lines.extend(f"srv-host={name},{target},{port},{priority},{weight}"
                         for priority, weight, port, target in services)
        return "\n".join(lines) + "\n"


def _reverse(address: str) -> str:
    import dns.reversename

    return dns.reversename.from_address(address).to_text().rstrip(".")


class Dnsmasq:
    """A private dnsmasq on host:port (UDP and TCP) serving `zone`."""

    def __init__(self, zone: Zone | None = None, host: str = "127.0.0.1",
                 port: int | None = None) -> None:
        self.zone = zone or Zone()
        self.host = host
        self.port = port or free_port()
        self._folder = Path(tempfile.mkdtemp(prefix="mailpipe-dns-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """What --dns takes."""
        return f"{self.host}:{self.port}"

    def start(self) -> Dnsmasq:
        conf = self._folder / "dnsmasq.conf"
        conf.write_text(self.zone.config())
        self._process = subprocess.Popen(
            [DNSMASQ, "--keep-in-foreground", f"--conf-file={conf}", f"--port={self.port}",
             f"--listen-address={self.host}", "--bind-interfaces", "--pid-file=",
             "--user=root"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_answering()
        return self

    def _wait_answering(self) -> None:
        import dns.message
        import dns.query

        deadline = time.monotonic() + 10
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"dnsmasq exited: {error.strip()}")
            try:
                dns.query.udp(dns.message.make_query("probe.invalid", "A"), self.host,
                              timeout=0.2, port=self.port)
                return
            except (OSError, dns.exception.Timeout):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def publish(self, zone: Zone) -> None:
        """Serve `zone` from now on (dnsmasq reads its records only when it starts)."""
        self.zone = zone
        self.stop()
        self.start()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            if self._process.stderr:
                self._process.stderr.close()
            self._process = None

    def __enter__(self) -> Dnsmasq:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
        shutil.rmtree(self._folder, ignore_errors=True)


class BrokenDns:
    """A DNS server on UDP host:port that never answers ("drop") or answers every query
    SERVFAIL ("servfail"): what a resolver meets when DNS is down or a zone is broken."""

    def __init__(self, behaviour: str, host: str = "127.0.0.1") -> None:
        assert behaviour in ("drop", "servfail")
        self.behaviour = behaviour
        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((host, 0))
        self.port = self._socket.getsockname()[1]
        self.queries = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stopped = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _serve(self) -> None:
        import dns.message
        import dns.rcode

        self._socket.settimeout(0.2)
        while not self._stopped:
            try:
                data, peer = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queries += 1
            if self.behaviour == "drop":
                continue
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:
                continue
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL)
            self._socket.sendto(response.to_wire(), peer)

    def __enter__(self) -> BrokenDns:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stopped = True
        self._thread.join(timeout=2)
        self._socket.close()
