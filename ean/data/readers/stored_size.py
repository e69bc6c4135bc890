"""A video's stored frame size read from its container header (mp4/mov and webm/mkv), without decoding.

decord tells a video's frame size only by decoding a frame; to decode straight at a short-side working size
(``VideoReader(width=, height=)``) the size is needed before the reader opens. The header says it: the
``stsd`` sample entry of an ISO BMFF file's video track, or ``PixelWidth`` / ``PixelHeight`` of a Matroska
file's video track. Anything unexpected gives ``None`` (the caller then decodes the frames as stored), and so
do files with video tracks of different sizes (ffmpeg picks one by bit rate, which the header does not tell).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

MAX_SIDE = 16384
MAX_MOOV_BYTES = 64 << 20
EBML_HEAD_BYTES = 64 << 10
_BMFF_PATH = (b"trak", b"mdia", b"minf", b"stbl", b"stsd")
_SEGMENT, _TRACKS, _TRACK_ENTRY, _CLUSTER = 0x18538067, 0x1654AE6B, 0xAE, 0x1F43B675
_TRACK_TYPE, _VIDEO, _PIXEL_WIDTH, _PIXEL_HEIGHT = 0x83, 0xE0, 0xB0, 0xBA


def stored_frame_size(path: str) -> tuple[int, int] | None:
    """(H, W) of the first video track's frames as the header declares them, or None if it cannot tell."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if head[:4] == b"\x1a\x45\xdf\xa3":
                f.seek(0)
                size = _matroska_size(f.read(EBML_HEAD_BYTES))
            elif head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
                size = _bmff_size(f)
            else:
                size = None
    except (OSError, struct.error, IndexError, ValueError):
        return None
    if size is None or not (0 < size[0] <= MAX_SIDE and 0 < size[1] <= MAX_SIDE):
        return None
    return size


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    """(type, payload start, payload end) of the ISO BMFF boxes in ``data[start:end]``."""
    end = len(data) if end is None else end
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, start + 8)
            header = 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            return
        yield kind, start + header, start + size
        start += size


def _bmff_size(f: BinaryIO) -> tuple[int, int] | None:
    """Finds the top-level ``moov`` box (before or after the media data) and reads its video track."""
    f.seek(0)
    while True:
        header = f.read(16)
        if len(header) < 8:
            return None
        size, kind = struct.unpack_from(">I4s", header)
        skip = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", header, 8)
            skip = 16
        if kind == b"moov":
            if not skip < size <= MAX_MOOV_BYTES:
                return None
            f.seek(skip - len(header), 1)
            return _moov_video_size(f.read(size - skip))
        if size < skip:  # 0: the box runs to the end of the file, and it was not moov
            return None
        f.seek(size - len(header), 1)


def _moov_video_size(moov: bytes) -> tuple[int, int] | None:
    sizes = {_track_size(moov, s, e) for kind, s, e in _boxes(moov) if kind == b"trak" and _is_video_track(moov, s, e)}
    return sizes.pop() if len(sizes) == 1 else None


def _track_size(moov: bytes, start: int, end: int) -> tuple[int, int] | None:
    stsd = _descend(moov, start, end, _BMFF_PATH[1:])
    if stsd is not None:  # FullBox header (4) and entry count (4), then the first sample entry
        for _, entry, entry_end in _boxes(moov, stsd[0] + 8, stsd[1]):
            if entry_end - entry >= 28:  # reserved (6), data reference (2), pre-defined (16): W, H
                width, height = struct.unpack_from(">HH", moov, entry + 24)
                return height, width
    return None


def _is_video_track(data: bytes, start: int, end: int) -> bool:
    mdia = _descend(data, start, end, (b"mdia",))
    if mdia is None:
        return False
    for kind, s, e in _boxes(data, *mdia):
        if kind == b"hdlr" and e - s >= 12:  # FullBox header (4), pre-defined (4), handler type
            return data[s + 8 : s + 12] == b"vide"
    return False


def _descend(data: bytes, start: int, end: int, path: tuple[bytes, ...]) -> tuple[int, int] | None:
    for kind in path:
        found = next(((s, e) for k, s, e in _boxes(data, start, end) if k == kind), None)
        if found is None:
            return None
        start, end = found
    return start, end


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at ``pos``: (value, length); value -1 for an unknown size."""
    first = data[pos]
    length = 9 - first.bit_length()
    if length > 8:
        raise ValueError("bad EBML integer")
    value = int.from_bytes(data[pos : pos + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
        if value == (1 << (7 * length)) - 1:
            value = -1
    return value, length


def _elements(data: bytes, start: int, end: int, partial: bool = False):
    """(id, payload start, payload end) of the EBML elements in ``data[start:end]`` (unknown sizes: to ``end``).

    An element cut off at ``end`` ends the walk, unless ``partial`` lets it through, clamped (the Segment: the
    whole file, of which only the head is read)."""
    while start < end:
        element, n = _vint(data, start, keep_marker=True)
        size, m = _vint(data, start + n, keep_marker=False)
        payload = start + n + m
        if size >= 0 and payload + size > end and not partial:
            return
        stop = end if size < 0 else min(payload + size, end)
        yield element, payload, stop
        start = stop


def _matroska_size(data: bytes) -> tuple[int, int] | None:
    for element, start, end in _elements(data, 0, len(data), partial=True):
        if element != _SEGMENT:
            continue
        for child, s, e in _elements(data, start, end):  # a child cut off by the bytes read ends the walk
            if child == _CLUSTER:  # the tracks come before the media in every muxer's output
                return None
            if child == _TRACKS:
                entries = [(es, ee) for entry, es, ee in _elements(data, s, e) if entry == _TRACK_ENTRY]
                sizes = {size for size in (_matroska_track_size(data, *entry) for entry in entries) if size}
                return sizes.pop() if len(sizes) == 1 else None
    return None


def _matroska_track_size(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """(H, W) of a video TrackEntry; None for other tracks (or a video track without its size)."""
    fields = {element: (s, e) for element, s, e in _elements(data, start, end)}
    if _TRACK_TYPE not in fields or int.from_bytes(data[slice(*fields[_TRACK_TYPE])], "big") != 1:
        return None  # not a video track
    if _VIDEO not in fields:
        return None
    video = {element: data[s:e] for element, s, e in _elements(data, *fields[_VIDEO])}
    if _PIXEL_WIDTH not in video or _PIXEL_HEIGHT not in video:
        return None
    return int.from_bytes(video[_PIXEL_HEIGHT], "big"), int.from_bytes(video[_PIXEL_WIDTH], "big")
