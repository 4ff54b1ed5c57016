"""A minimal cluster DNS for the test cluster of scripts/kube.sh: answers A queries for
`<service>.<namespace>.svc[.cluster.local]` with the Service's ClusterIP (looked up in the API server
on each query) and NXDOMAIN for every other name, so pods reach the aggregator by its Service name as
on EKS (CoreDNS) without running a DNS server image.

    python3 kube_dns.py ADDRESS KUBECONFIG_SERVER TOKEN_FILE CA_FILE

Standard library only: it runs with the system Python inside the cluster's network namespace.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import struct
import sys
import urllib.error
import urllib.request

SUFFIXES = (".svc.cluster.local", ".svc")


def parse_question(packet: bytes) -> tuple[int, int, str, int, int] | None:
    """(id, flags, name, qtype, end offset of the question) of a one-question query."""
    if len(packet) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1:
        return None
    labels: list[str] = []
    pos = 12
    while pos < len(packet):
        n = packet[pos]
        pos += 1
        if n == 0:
            break
        if n & 0xC0:
            return None
        labels.append(packet[pos : pos + n].decode("ascii", "replace"))
        pos += n
    if pos + 4 > len(packet):
        return None
    qtype, _qclass = struct.unpack("!HH", packet[pos : pos + 4])
    return ident, flags, ".".join(labels).lower(), qtype, pos + 4


def answer(packet: bytes, resolve: object) -> bytes | None:
    q = parse_question(packet)
    if q is None:
        return None
    ident, flags, name, qtype, end = q
    question = packet[12:end]
    ip = resolve(name) if callable(resolve) else None  # type: ignore[operator]
    rd = flags & 0x0100
    if ip is None:
        # NXDOMAIN, authoritative: the resolver goes on to the next search domain at once.
        return struct.pack("!HHHHHH", ident, 0x8400 | rd | 3, 1, 0, 0, 0) + question
    if qtype != 1:  # the name exists but has no record of that type (AAAA): empty answer
        return struct.pack("!HHHHHH", ident, 0x8400 | rd, 1, 0, 0, 0) + question
    record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + ipaddress.IPv4Address(ip).packed
    return struct.pack("!HHHHHH", ident, 0x8400 | rd, 1, 1, 0, 0) + question + record


class Services:
    def __init__(self, server: str, token_file: str, ca_file: str) -> None:
        self.server = server.rstrip("/")
        with open(token_file) as f:
            self.token = f.read().strip()
        self.ctx = ssl.create_default_context(cafile=ca_file)

    def __call__(self, name: str) -> str | None:
        for suffix in SUFFIXES:
            if name.endswith(suffix):
                parts = name[: -len(suffix)].split(".")
                if len(parts) == 2:
                    return self.cluster_ip(parts[1], parts[0])
        return None

    def cluster_ip(self, namespace: str, service: str) -> str | None:
        url = f"{self.server}/api/v1/namespaces/{namespace}/services/{service}"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=3) as resp:
                spec = json.load(resp).get("spec", {})
        except (urllib.error.URLError, OSError, ValueError):
            return None
        ip = spec.get("clusterIP")
        return ip if ip and ip != "None" else None


def main() -> None:
    address, server, token_file, ca_file = sys.argv[1:5]
    services = Services(server, token_file, ca_file)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    while True:
        packet, peer = sock.recvfrom(512)
        reply = answer(packet, services)
        if reply is not None:
            sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
