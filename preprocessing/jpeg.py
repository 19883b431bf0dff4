"""A fast structural check of a JPEG file, used before copying it byte for byte.

Decoding every pixel of a 348x348 JPEG costs more than everything else ``prepare`` does
for an image it only copies. What makes a JPEG undecodable for libjpeg (which the
algorithm's container uses, through OpenCV) is a broken marker structure, bad tables, or a
file that ends early; damaged entropy-coded data only produces decoder *warnings*. So this
module walks the markers (SOI ... SOS ... EOI), checks SOF, DHT (the same Huffman-table
test libjpeg applies) and that each scan's tables exist, and requires the EOI marker.

``is_intact`` answers True only when everything looks as expected. Anything unusual
(12-bit, arithmetic coding, lossless, tables missing) returns False, and the caller then
falls back to a real decode with Pillow, which decides. So this check can never reject a
file on its own: it only skips the decode for files that are plainly fine.
"""

from __future__ import annotations

SOI, EOI, SOS, DHT = 0xD8, 0xD9, 0xDA, 0xC4
SOF_SUPPORTED = {0xC0, 0xC1, 0xC2}  # baseline, extended sequential, progressive (Huffman)
SOF_OTHER = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
RST = range(0xD0, 0xD8)


def is_intact(data: bytes) -> bool:  # noqa: PLR0911, PLR0912 - a flat state machine reads best
    """True if ``data`` is a complete, well-formed Huffman JPEG (see the module docstring)."""
    size = len(data)
    if size < 4 or data[0] != 0xFF or data[1] != SOI:
        return False
    pos = 2
    tables: set[tuple[int, int]] = set()
    components: set[int] | None = None
    scans = 0
    while True:
        if pos >= size or data[pos] != 0xFF:
            return False
        while pos < size and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= size:
            return False
        marker = data[pos]
        pos += 1
        if marker == EOI:
            return components is not None and scans > 0
        if marker in RST or marker == 0x01:
            continue  # stand-alone markers
        if marker < 0xC0 or marker in SOF_OTHER or marker == SOI:
            return False
        if pos + 2 > size:
            return False
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > size:
            return False
        segment = data[pos + 2 : pos + length]
        pos += length
        if marker in SOF_SUPPORTED:
            components = _frame_components(segment)
            if components is None:
                return False
        elif marker == DHT:
            if not _read_huffman_tables(segment, tables):
                return False
        elif marker == SOS:
            if components is None or not _scan_ok(segment, components, tables):
                return False
            scans += 1
            pos = _end_of_entropy_data(data, pos)
            if pos < 0:
                return False  # the file ends inside the scan: truncated


def _frame_components(segment: bytes) -> set[int] | None:
    if len(segment) < 6 or segment[0] != 8:  # 8-bit precision only
        return None
    height = int.from_bytes(segment[1:3], "big")
    width = int.from_bytes(segment[3:5], "big")
    count = segment[5]
    if height == 0 or width == 0 or count not in (1, 3, 4) or len(segment) != 6 + 3 * count:
        return None
    ids = set()
    for i in range(count):
        component_id, sampling, quant_table = segment[6 + 3 * i : 9 + 3 * i]
        if not (1 <= sampling >> 4 <= 4 and 1 <= sampling & 15 <= 4 and quant_table <= 3):
            return None
        ids.add(component_id)
    return ids if len(ids) == count else None


def _read_huffman_tables(segment: bytes, tables: set[tuple[int, int]]) -> bool:
    i = 0
    while i < len(segment):
        if i + 17 > len(segment):
            return False
        table_class, table_id = segment[i] >> 4, segment[i] & 15
        counts = segment[i + 1 : i + 17]
        total = sum(counts)
        if table_class > 1 or table_id > 3 or total > 256 or i + 17 + total > len(segment):
            return False
        if table_class == 0 and any(value > 15 for value in segment[i + 17 : i + 17 + total]):
            return False  # DC symbols are bit counts 0..15 (libjpeg: bad Huffman table)
        code = 0
        for bits, count in enumerate(counts, start=1):
            code += count
            if count and code >= 1 << bits:  # libjpeg's jpeg_make_d_derived_tbl test
                return False
            code <<= 1
        tables.add((table_class, table_id))
        i += 17 + total
    return True


def _scan_ok(segment: bytes, components: set[int], tables: set[tuple[int, int]]) -> bool:
    if not segment:
        return False
    count = segment[0]
    if not 1 <= count <= 4 or len(segment) != 4 + 2 * count:
        return False
    start, end, approximation = segment[1 + 2 * count : 4 + 2 * count]
    for i in range(count):
        component_id, selectors = segment[1 + 2 * i], segment[2 + 2 * i]
        if component_id not in components:
            return False
        if start == 0 and approximation >> 4 == 0 and (0, selectors >> 4) not in tables:
            return False  # DC table used by this scan is missing
        if end > 0 and (1, selectors & 15) not in tables:
            return False  # AC table used by this scan is missing
    return True


def _end_of_entropy_data(data: bytes, pos: int) -> int:
    """Position of the marker after a scan's entropy-coded data, or -1 if the file ends."""
    size = len(data)
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= size:
            return -1
        following = data[pos + 1]
        if following == 0x00 or following in RST:
            pos += 2  # stuffed 0xFF byte or restart marker: still inside the scan
        elif following == 0xFF:
            pos += 1  # fill byte
        else:
            return pos
