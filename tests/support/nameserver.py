"""A small authoritative DNS server over UDP, for tests: answers A queries from a table, never
answers names under the stalled suffixes (an attacker's name server that takes its time), and
says NXDOMAIN to everything else.

    python -m tests.support.nameserver --port 53 --answer registry.healthy.test=127.0.0.1 \\
        --stall .stall.test
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import struct
import sys
from collections.abc import Sequence

_A, _AAAA = 1, 28


def _question(packet: bytes) -> tuple[str, int, int]:
    """(name, type, end offset of the question) of a query."""
    labels, offset = [], 12
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype = struct.unpack("!H", packet[offset + 1 : offset + 3])[0]
    return ".".join(labels).lower(), qtype, offset + 5


def answer(packet: bytes, table: dict[str, str], stalled: Sequence[str]) -> bytes | None:
    """The response to `packet`, or None to stay silent."""
    if len(packet) < 17:
        return None
    name, qtype, end = _question(packet)
    if any(name.endswith(suffix) for suffix in stalled):
        return None
    (ident,) = struct.unpack("!H", packet[:2])
    question = packet[12:end]
    address = table.get(name)
    records = b""
    count = 0
    if address is not None and qtype == _A:
        records = (
            b"\xc0\x0c"  # the name, by pointer to the question
            + struct.pack("!HHIH", _A, 1, 30, 4)
            + ipaddress.IPv4Address(address).packed
        )
        count = 1
    rcode = 0 if address is not None else 3  # NXDOMAIN for names we do not know
    flags = 0x8400 | rcode  # a response, authoritative
    header = struct.pack("!HHHHHH", ident, flags, 1, count, 0, 0)
    return header + question + records


def serve(port: int, table: dict[str, str], stalled: Sequence[str]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    print(f"listening on 127.0.0.1:{port}", flush=True)
    while True:
        packet, peer = sock.recvfrom(4096)
        response = answer(packet, table, stalled)
        if response is not None:
            sock.sendto(response, peer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--answer", action="append", default=[], metavar="NAME=ADDRESS")
    parser.add_argument("--stall", action="append", default=[], metavar="SUFFIX")
    args = parser.parse_args(argv)
    table = dict(item.lower().split("=", 1) for item in args.answer)
    serve(args.port, table, args.stall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
