"""A minimal DER (X.690) reader for the few structures keyless verification parses itself.

What it reads is attacker input, so it is deliberately small and strict:

1. An element is a one-octet tag (tag numbers below 31: all that CMS and X.509 use), a definite
   length in at most 4 octets and in its shortest form, and that many octets of content, which
   must fit inside whatever holds the element.
2. Nothing is parsed ahead: a caller walks one level at a time (`Element.reader()`), so the depth
   reached is that of the structure the caller expects, and a constructed element yields at most
   `MAX_CHILDREN` children.
3. Scalars are checked as DER requires (shortest integers, well-formed object identifiers,
   `GeneralizedTime` in UTC) and bounded in size, so no value costs more than linear time.

Every problem raises `DerError` (a `ValueError`), with a message saying what was wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

__all__ = [
    "BOOLEAN",
    "GENERALIZED_TIME",
    "INTEGER",
    "NULL",
    "OBJECT_IDENTIFIER",
    "OCTET_STRING",
    "SEQUENCE",
    "SET",
    "DerError",
    "Element",
    "Reader",
    "TbsCertificate",
    "context",
    "decode",
    "tbs_certificate",
]

BOOLEAN: Final = 0x01
INTEGER: Final = 0x02
OCTET_STRING: Final = 0x04
NULL: Final = 0x05
OBJECT_IDENTIFIER: Final = 0x06
GENERALIZED_TIME: Final = 0x18
SEQUENCE: Final = 0x30
SET: Final = 0x31

MAX_CHILDREN: Final = 256
_MAX_INTEGER_OCTETS: Final = 64
_MAX_OID_OCTETS: Final = 64
# YYYY MM DD HH MM SS [.fraction] Z
_GENERALIZED_TIME: Final = re.compile(rb"(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:\.(\d{1,9}))?Z")


class DerError(ValueError):
    """The bytes are not the DER that was expected; the message says how."""


def context(number: int, *, constructed: bool = True) -> int:
    """The tag of a context-specific element `[number]`."""
    return (0xA0 if constructed else 0x80) | number


@dataclass(frozen=True, slots=True)
class Element:
    """One element: its tag, and its whole encoding (tag, length and content)."""

    tag: int
    encoding: bytes
    header_length: int

    @property
    def content(self) -> bytes:
        return self.encoding[self.header_length :]

    def expect(self, tag: int, what: str) -> Element:
        if self.tag != tag:
            raise DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{self.tag:02x}")
        return self

    def children(self) -> list[Element]:
        if not self.tag & 0x20:
            raise DerError(f"tag 0x{self.tag:02x} is primitive: it has no elements")
        content, offset = self.content, 0
        found: list[Element] = []
        while offset < len(content):
            if len(found) == MAX_CHILDREN:
                raise DerError(f"more than {MAX_CHILDREN} elements in one structure")
            element, offset = _element_at(content, offset)
            found.append(element)
        return found

    def reader(self) -> Reader:
        return Reader(self.children())

    def integer(self, what: str) -> int:
        body = self.expect(INTEGER, what).content
        if not body or len(body) > _MAX_INTEGER_OCTETS:
            raise DerError(f"{what}: an integer of {len(body)} octets")
        if len(body) > 1 and (body[0], body[1] >> 7) in ((0x00, 0), (0xFF, 1)):
            raise DerError(f"{what}: an integer not in its shortest form")
        return int.from_bytes(body, "big", signed=True)

    def oid(self, what: str) -> str:
        body = self.expect(OBJECT_IDENTIFIER, what).content
        if not body or len(body) > _MAX_OID_OCTETS or body[-1] & 0x80:
            raise DerError(f"{what}: a malformed object identifier")
        arcs: list[int] = []
        value, starting = 0, True
        for octet in body:
            if starting and octet == 0x80:
                raise DerError(f"{what}: an object identifier arc not in its shortest form")
            value, starting = (value << 7) | (octet & 0x7F), not octet & 0x80
            if starting:
                arcs.append(value)
                value = 0
        first = min(arcs[0] // 40, 2)
        return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))

    def octets(self, what: str) -> bytes:
        return self.expect(OCTET_STRING, what).content

    def generalized_time(self, what: str) -> datetime:
        """A `GeneralizedTime` in UTC ("YYYYMMDDHHMMSS[.fff]Z"), to the microsecond."""
        match = _GENERALIZED_TIME.fullmatch(self.expect(GENERALIZED_TIME, what).content)
        if match is None:
            raise DerError(f"{what}: not a GeneralizedTime in UTC")
        year, month, day, hour, minute, second = (int(f) for f in match.groups()[:6])
        # Digits past the microsecond are dropped: no check here is finer than that.
        micros = int((match.group(7) or b"").ljust(6, b"0")[:6])
        try:
            return datetime(year, month, day, hour, minute, second, micros, tzinfo=UTC)
        except ValueError:
            raise DerError(f"{what}: {match.group(0).decode()} is not a date") from None


class Reader:
    """The elements of a structure, taken in order; optional ones are recognised by their tag."""

    def __init__(self, elements: list[Element]) -> None:
        self._elements = elements
        self._next = 0

    def take(self, tag: int, what: str) -> Element:
        if self._next == len(self._elements):
            raise DerError(f"{what} is missing")
        element = self._elements[self._next].expect(tag, what)
        self._next += 1
        return element

    def optional(self, tag: int) -> Element | None:
        if self._next < len(self._elements) and self._elements[self._next].tag == tag:
            self._next += 1
            return self._elements[self._next - 1]
        return None


def decode(data: bytes) -> Element:
    """The single element that `data` is, with nothing after it."""
    element, end = _element_at(data, 0)
    if end != len(data):
        raise DerError(f"{len(data) - end} octets after the end of the structure")
    return element


@dataclass(frozen=True, slots=True)
class TbsCertificate:
    """The fields of a certificate that are compared byte for byte, as encoded in it."""

    serial_number: int
    issuer: bytes
    subject_public_key_info: bytes


def tbs_certificate(certificate_der: bytes) -> TbsCertificate:
    """Serial number, issuer Name (DER) and SubjectPublicKeyInfo (DER) of an X.509 certificate."""
    tbs = decode(certificate_der).expect(SEQUENCE, "certificate").reader()
    fields = tbs.take(SEQUENCE, "tbsCertificate").reader()
    fields.optional(context(0))  # version
    serial_number = fields.take(INTEGER, "serialNumber").integer("serialNumber")
    fields.take(SEQUENCE, "signature")
    issuer = fields.take(SEQUENCE, "issuer").encoding
    fields.take(SEQUENCE, "validity")
    fields.take(SEQUENCE, "subject")
    spki = fields.take(SEQUENCE, "subjectPublicKeyInfo").encoding
    return TbsCertificate(serial_number, issuer, spki)


def _element_at(data: bytes, offset: int) -> tuple[Element, int]:
    """The element that starts at `offset`, and the offset after it."""
    if len(data) - offset < 2:
        raise DerError("truncated: an element needs at least two octets")
    tag, first = data[offset], data[offset + 1]
    if tag & 0x1F == 0x1F:
        raise DerError(f"a multi-octet tag (0x{tag:02x}…)")
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise DerError("an indefinite length (BER, not DER)")
        if count > 4:
            raise DerError(f"a length of {count} octets")
        if start + count > len(data):
            raise DerError("truncated inside a length")
        length = int.from_bytes(data[start : start + count], "big")
        if length < 0x80 or data[start] == 0:
            raise DerError("a length not in its shortest form")
        start += count
    end = start + length
    if end > len(data):
        raise DerError(f"truncated: an element of {length} octets has {len(data) - start}")
    return Element(tag, data[offset:end], start - offset), end
