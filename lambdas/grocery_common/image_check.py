"""A cheap check that an upload's header is one the algorithm's decoder can read.

One image the model cannot decode fails the whole transform job (the others still get
their outputs). The algorithm decodes images with OpenCV, i.e. libjpeg and libpng. This
module rejects only what those libraries give up on while reading the header, so it
never rejects an image they would decode:

- JPEG: the markers from SOI to the first SOS are read as libjpeg's `read_markers` reads
  them (garbage between segments is skipped, as libjpeg does with a warning), and the
  conditions libjpeg treats as fatal are reported: a file that ends before its image
  data (libjpeg then meets its own fake EOI: "JPEG datastream contains no image"), a
  second SOI or SOF, SOS before SOF, an empty or malformed frame or scan header, a bad
  Huffman or quantization table index, an unknown marker. Damage after the first scan
  header only makes libjpeg warn, so it is not checked;
- PNG: the IHDR chunk that must follow the signature: its length, type, CRC (libpng
  stops on a bad CRC of a critical chunk) and values.

Only the header is read (usually a few kilobytes): `check_image` says `need_more` when
the bytes given end inside the header of a larger object. Pure Python, no Pillow: it
runs in the batch trigger Lambda. (preprocessing/jpeg.py checks whole files for
`prepare`, and falls back to a real decode; Lambda assets do not ship it.)
"""

from __future__ import annotations

import dataclasses
import zlib

JPEG_SIGNATURE = b"\xff\xd8"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What the trigger reads first: more than almost any header (EXIF is at most 64 KiB).
HEADER_BYTES = 128 * 1024

SOI, EOI, SOS, DHT, DQT, DRI = 0xD8, 0xD9, 0xDA, 0xC4, 0xDB, 0xDD
# SOF0..SOF15 minus DHT (C4), JPG (C8) and DAC (CC).
SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers libjpeg skips (APPn, COM, DAC, DNL) or takes alone (RSTn, TEM).
SKIPPED = frozenset({*range(0xE0, 0xF0), 0xFE, 0xCC, 0xDC})
STANDALONE = frozenset({*range(0xD0, 0xD8), 0x01})
KNOWN = SOF | SKIPPED | {DHT, DQT, DRI, SOS}
# Hierarchical and differential processes: libjpeg stops ("Unsupported JPEG process").
HIERARCHICAL = frozenset({0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF})
_PNG_DEPTHS = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}


@dataclasses.dataclass(frozen=True)
class Verdict:
    problem: str = ""  # why a decoder would give up; "" when the header is fine
    need_more: bool = False  # the bytes given end inside the header of a larger object

    @property
    def ok(self) -> bool:
        return not self.problem and not self.need_more


class _TruncatedError(Exception):
    """The bytes given end inside the header."""


def check_image(head: bytes, size: int) -> Verdict:
    """Judges the first bytes `head` of an object of `size` bytes (JPEG or PNG)."""
    complete = len(head) >= size
    try:
        if head.startswith(JPEG_SIGNATURE):
            problem = _jpeg_problem(head)
        elif head.startswith(PNG_SIGNATURE):
            problem = _png_problem(head)
        else:
            problem = "it starts with neither the JPEG nor the PNG signature"
    except _TruncatedError:
        if not complete:
            return Verdict(need_more=True)
        problem = "the file ends inside its header (a truncated upload?)"
    return Verdict(problem=problem)


def _jpeg_problem(data: bytes) -> str:  # noqa: PLR0911, PLR0912 - one branch per marker, as libjpeg
    reader = _Reader(data, 2)
    frame: set[int] | None = None
    while True:
        marker = reader.next_marker()
        if marker in STANDALONE:
            continue
        if marker == SOI:
            return "a second start-of-image marker"
        if marker == EOI:
            return "it ends (EOI) before any image data"
        if marker in HIERARCHICAL:
            return (
                f"a hierarchical JPEG (SOF marker 0xFF{marker:02X}), which libjpeg does not decode"
            )
        if marker not in KNOWN:
            return f"an unknown marker 0xFF{marker:02X} in its header"
        segment = reader.segment()
        if marker in SOF:
            if frame is not None:
                return "a second frame header (SOF)"
            frame = _frame(segment)
            if frame is None:
                return "its frame header (SOF) is malformed or declares an empty image"
        elif marker == SOS:
            if frame is None:
                return "image data (SOS) before the frame header (SOF)"
            return _scan_problem(segment, frame)
        elif marker == DHT and not _huffman_ok(segment):
            return "a malformed Huffman table (DHT)"
        elif marker == DQT and not _quantization_ok(segment):
            return "a malformed quantization table (DQT)"
        elif marker == DRI and len(segment) != 2:
            return "a malformed restart interval (DRI)"


@dataclasses.dataclass
class _Reader:
    data: bytes
    pos: int

    def next_marker(self) -> int:
        """libjpeg's next_marker: skip to 0xFF, skip fill bytes, ignore stuffed 0xFF00."""
        data, size = self.data, len(self.data)
        while True:
            while self.pos < size and data[self.pos] != 0xFF:
                self.pos += 1  # extraneous bytes: libjpeg warns and skips them
            while self.pos < size and data[self.pos] == 0xFF:
                self.pos += 1
            if self.pos >= size:
                raise _TruncatedError
            marker = data[self.pos]
            self.pos += 1
            if marker:
                return marker

    def segment(self) -> bytes:
        """The marker segment's content (after its 2-byte length)."""
        if self.pos + 2 > len(self.data):
            raise _TruncatedError
        length = int.from_bytes(self.data[self.pos : self.pos + 2], "big")
        if self.pos + max(length, 2) > len(self.data):
            raise _TruncatedError
        segment = self.data[self.pos + 2 : self.pos + length]
        self.pos += max(length, 2)
        return segment


def _frame(segment: bytes) -> set[int] | None:
    """The component ids of a well-formed SOF, or None (libjpeg: bad length, empty image)."""
    if len(segment) < 6:
        return None
    height, width, count = (
        int.from_bytes(segment[1:3], "big"),
        int.from_bytes(segment[3:5], "big"),
        segment[5],
    )
    if not (height and width and count) or len(segment) != 6 + 3 * count:
        return None
    return {segment[6 + 3 * i] for i in range(count)}


def _scan_problem(segment: bytes, frame: set[int]) -> str:
    count = segment[0] if segment else 0
    if not 1 <= count <= 4 or len(segment) != 4 + 2 * count:
        return "its scan header (SOS) is malformed"
    if any(segment[1 + 2 * i] not in frame for i in range(count)):
        return "its scan header (SOS) names a component the frame does not have"
    return ""


def _huffman_ok(segment: bytes) -> bool:
    """libjpeg get_dht: table index 0..3 per class, at most 256 symbols, exact length."""
    i = 0
    while i < len(segment):
        if i + 17 > len(segment):
            return False
        index = segment[i] & ~0x10
        total = sum(segment[i + 1 : i + 17])
        if index > 3 or total > 256 or i + 17 + total > len(segment):
            return False
        i += 17 + total
    return True


def _quantization_ok(segment: bytes) -> bool:
    """libjpeg get_dqt: table index 0..3 (a short last table is tolerated, as libjpeg does)."""
    i = 0
    while i < len(segment):
        precision, index = segment[i] >> 4, segment[i] & 0x0F
        if index > 3:
            return False
        i += 1 + 64 * (2 if precision else 1)
    return True


def _png_problem(data: bytes) -> str:
    if len(data) < 33:
        raise _TruncatedError
    length, kind, fields = int.from_bytes(data[8:12], "big"), data[12:16], data[16:29]
    if length != 13 or kind != b"IHDR":
        return "its first chunk is not a 13-byte IHDR"
    if zlib.crc32(data[12:29]) != int.from_bytes(data[29:33], "big"):
        return "its IHDR chunk fails its CRC check"
    width, height = int.from_bytes(fields[0:4], "big"), int.from_bytes(fields[4:8], "big")
    depth, color, compression, filtering, interlace = fields[8:13]
    if not (0 < width < 2**31 and 0 < height < 2**31):
        return f"its IHDR declares a {width}x{height} image"
    if depth not in _PNG_DEPTHS.get(color, ()) or compression or filtering or interlace > 1:
        return "its IHDR declares an invalid bit depth, colour type or method"
    return ""
