"""The messages between SubprocessVideoReader and its decoder process: fixed binary layouts, never pickle.

The decoder process parses untrusted files, so the reader must not unpickle what it says (a decoder taken
over by a crafted file could run code in the trainer). Every message is one ``Connection.send_bytes`` frame
(a 4-byte big-endian length, then the message): a 1-byte type, then that type's fields, little-endian.
Integers are int64 unless said otherwise; a string is a uint32 byte count and that many UTF-8 bytes; a shape
is a uint8 count and that many int64s.

Requests, reader -> decoder process::

    OPEN    0x01  num_threads (uint16), has_size (uint8), height, width (uint32; 0 without a size), path
    DECODE  0x02  count (uint32), count frame indices
    CROP    0x03  top, left, height, width (uint32 each)

Replies, decoder process -> reader::

    READY   0x81  (nothing)                 once, when the decoder process has started
    OPENED  0x82  num_frames                answers OPEN
    DECODED 0x83  shape (N, H, W, 3)        answers DECODE; the frames stay in the decoder process
    CROPPED 0x84  shape (N, h, w, 3), buffer_size   answers CROP; the region is in the shared buffer
    ERROR   0x8F  reason (a string)         answers any request about a file that cannot be read

:func:`decode_reply` accepts only these layouts, exactly: an unknown type, a length that does not match, a
negative number or a shape of more than ``MAX_DIMS`` dimensions raise :class:`ProtocolError`. Whether the
values make sense for the request (a shape of the frames asked for, a buffer that exists) is the reader's
check. Imports the standard library only: the decoder process imports it as ``decode_protocol``, beside
``decode_child.py``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

OPEN, DECODE, CROP = 0x01, 0x02, 0x03
READY, OPENED, DECODED, CROPPED, ERROR = 0x81, 0x82, 0x83, 0x84, 0x8F

MAX_REQUEST_BYTES = 16 << 20  # 2M frame indices
MAX_REPLY_BYTES = 8 << 10  # the longest reply is an ERROR of MAX_REASON_BYTES
MAX_REASON_BYTES = 4000
MAX_DIMS = 8

_OPEN = struct.Struct("<BHBII")
_CROP = struct.Struct("<B4I")
_COUNT = struct.Struct("<I")
_INT = struct.Struct("<q")


class ProtocolError(ValueError):
    """A message that is not one of the layouts above."""


# requests: encoded by the reader, decoded by the decoder process


def encode_open(path: str, num_threads: int, size: tuple[int, int] | None) -> bytes:
    height, width = size or (0, 0)
    head = _OPEN.pack(OPEN, num_threads, size is not None, height, width)
    return head + _string(path.encode("utf-8", "surrogateescape"))


def encode_decode(indices: Sequence[int]) -> bytes:
    return struct.pack(f"<BI{len(indices)}q", DECODE, len(indices), *indices)


def encode_crop(top: int, left: int, height: int, width: int) -> bytes:
    return _CROP.pack(CROP, top, left, height, width)


def decode_request(data: bytes) -> tuple:
    """``("open", path, num_threads, size)``, ``("decode", indices)`` or ``("crop", top, left, height, width)``."""
    kind = _kind(data)
    if kind == OPEN:
        _, threads, has_size, height, width = _unpack(_OPEN, data, 0)
        path, end = _read_string(data, _OPEN.size)
        _end(data, end)
        return "open", path.decode("utf-8", "surrogateescape"), threads, (height, width) if has_size else None
    if kind == DECODE:
        (count,) = _unpack(_COUNT, data, 1)
        _end(data, 1 + _COUNT.size + 8 * count)
        return "decode", struct.unpack_from(f"<{count}q", data, 1 + _COUNT.size)
    if kind == CROP:
        _end(data, _CROP.size)
        return ("crop", *_CROP.unpack(data)[1:])
    raise ProtocolError(f"unknown request type 0x{kind:02x}")


# replies: encoded by the decoder process, decoded (and so checked) by the reader


def encode_ready() -> bytes:
    return bytes([READY])


def encode_opened(num_frames: int) -> bytes:
    return bytes([OPENED]) + _INT.pack(num_frames)


def encode_decoded(shape: Sequence[int]) -> bytes:
    return bytes([DECODED]) + _shape(shape)


def encode_cropped(shape: Sequence[int], buffer_size: int) -> bytes:
    return bytes([CROPPED]) + _shape(shape) + _INT.pack(buffer_size)


def encode_error(reason: str) -> bytes:
    raw = reason.encode("utf-8", "backslashreplace")[:MAX_REASON_BYTES]
    return bytes([ERROR]) + _string(raw.decode("utf-8", "ignore").encode())  # cut on a character boundary


def decode_reply(data: bytes) -> tuple:
    """``("ready",)``, ``("opened", num_frames)``, ``("decoded", shape)``, ``("cropped", shape, buffer_size)`` or
    ``("error", reason)``; ProtocolError for anything else."""
    if len(data) > MAX_REPLY_BYTES:
        raise ProtocolError(f"a reply of {len(data)} bytes (at most {MAX_REPLY_BYTES})")
    kind = _kind(data)
    if kind == READY:
        _end(data, 1)
        return ("ready",)
    if kind == OPENED:
        (num_frames,) = _unpack(_INT, data, 1)
        _end(data, 1 + _INT.size)
        return "opened", _size(num_frames, "frame count")
    if kind == DECODED:
        shape, end = _read_shape(data, 1)
        _end(data, end)
        return "decoded", shape
    if kind == CROPPED:
        shape, end = _read_shape(data, 1)
        (buffer_size,) = _unpack(_INT, data, end)
        _end(data, end + _INT.size)
        return "cropped", shape, _size(buffer_size, "buffer size")
    if kind == ERROR:
        reason, end = _read_string(data, 1, MAX_REASON_BYTES)
        _end(data, end)
        return "error", reason.decode("utf-8", "replace")
    raise ProtocolError(f"unknown reply type 0x{kind:02x}")


def _kind(data: bytes) -> int:
    if not data:
        raise ProtocolError("an empty message")
    return data[0]


def _unpack(layout: struct.Struct, data: bytes, offset: int) -> tuple:
    if len(data) < offset + layout.size:
        raise ProtocolError(f"a message of type 0x{data[0]:02x} cut short at {len(data)} bytes")
    return layout.unpack_from(data, offset)


def _end(data: bytes, end: int) -> None:
    if len(data) != end:
        raise ProtocolError(f"a message of type 0x{data[0]:02x} of {len(data)} bytes, not {end}")


def _string(raw: bytes) -> bytes:
    return _COUNT.pack(len(raw)) + raw


def _read_string(data: bytes, offset: int, limit: int | None = None) -> tuple[bytes, int]:
    (length,) = _unpack(_COUNT, data, offset)
    if limit is not None and length > limit:
        raise ProtocolError(f"a string of {length} bytes (at most {limit})")
    start = offset + _COUNT.size
    if len(data) < start + length:
        raise ProtocolError(f"a string of {length} bytes in a message of {len(data)}")
    return bytes(data[start : start + length]), start + length


def _shape(shape: Sequence[int]) -> bytes:
    return struct.pack(f"<B{len(shape)}q", len(shape), *shape)


def _read_shape(data: bytes, offset: int) -> tuple[tuple[int, ...], int]:
    if len(data) <= offset:
        raise ProtocolError(f"a message of type 0x{data[0]:02x} cut short at {len(data)} bytes")
    ndim = data[offset]
    if ndim > MAX_DIMS:
        raise ProtocolError(f"a shape of {ndim} dimensions")
    layout = struct.Struct(f"<{ndim}q")
    shape = tuple(_size(d, "dimension") for d in _unpack(layout, data, offset + 1))
    return shape, offset + 1 + layout.size


def _size(value: int, what: str) -> int:
    if value < 0:
        raise ProtocolError(f"a negative {what} ({value})")
    return value
