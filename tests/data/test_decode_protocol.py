"""The decoder process speaks fixed binary messages, never pickle: every message round-trips, and a reply that
is not one (a pickle whose loading would run code, random bytes, wrong lengths, absurd shapes) is refused as
a bad file, with the decoder process killed and nothing run."""

import json
import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest

from ean.data.errors import BadMediaError
from ean.data.readers import SubprocessVideoReader
from ean.data.readers import decode_protocol as protocol
from ean.data.readers.timeout import CHILD_SCRIPT
from tests.data.media import write_video


def test_every_request_round_trips():
    cases = [
        (protocol.encode_open("/data/a b/clip.mp4", 2, (240, 320)), ("open", "/data/a b/clip.mp4", 2, (240, 320))),
        (protocol.encode_open("vidéo/克.webm", 1, None), ("open", "vidéo/克.webm", 1, None)),
        (protocol.encode_open("bytes\udcff.mp4", 1, None), ("open", "bytes\udcff.mp4", 1, None)),  # not UTF-8
        (protocol.encode_decode([0, 7, 7, 2**40, -1]), ("decode", (0, 7, 7, 2**40, -1))),
        (protocol.encode_decode([]), ("decode", ())),
        (protocol.encode_crop(5, 7, 30, 41), ("crop", 5, 7, 30, 41)),
    ]
    for message, expected in cases:
        assert protocol.decode_request(message) == expected


def test_every_reply_round_trips():
    cases = [
        (protocol.encode_ready(), ("ready",)),
        (protocol.encode_opened(0), ("opened", 0)),
        (protocol.encode_opened(123456), ("opened", 123456)),
        (protocol.encode_decoded((40, 240, 320, 3)), ("decoded", (40, 240, 320, 3))),
        (protocol.encode_cropped((40, 224, 224, 3), 1 << 23), ("cropped", (40, 224, 224, 3), 1 << 23)),
        (protocol.encode_error("cannot open video (DECORDError: x)"), ("error", "cannot open video (DECORDError: x)")),
        (protocol.encode_error("ünïcode\ttab"), ("error", "ünïcode\ttab")),
    ]
    for message, expected in cases:
        assert protocol.decode_reply(message) == expected
    long = protocol.decode_reply(protocol.encode_error("é" * 5000))[1]  # cut to fit, on a character boundary
    assert long == "é" * (protocol.MAX_REASON_BYTES // 2)


BAD_REPLIES = {  # name: (message, why it is refused)
    "empty": (b"", "an empty message"),
    "unknown type": (b"\x42", "unknown reply type 0x42"),
    "pickle protocol": (pickle.dumps(("ok", 10)), "unknown reply type 0x80"),
    "ready with a field": (b"\x81\x00", "of 2 bytes, not 1"),
    "opened cut short": (b"\x82\x01\x02\x03", "cut short at 4 bytes"),
    "opened too long": (protocol.encode_opened(3) + b"\x00", "of 10 bytes, not 9"),
    "negative frames": (protocol.encode_opened(-5), r"a negative frame count \(-5\)"),
    "shape of 200 dimensions": (bytes([protocol.DECODED, 200]) + b"\x00" * 1600, "a shape of 200 dimensions"),
    "shape cut short": (bytes([protocol.DECODED, 4]) + struct.pack("<3q", 1, 2, 3), "cut short at 26 bytes"),
    "negative dimension": (protocol.encode_decoded((2, -48, 64, 3)), r"a negative dimension \(-48\)"),
    "negative buffer": (protocol.encode_cropped((2, 8, 8, 3), -1), r"a negative buffer size \(-1\)"),
    "string longer than the message": (
        bytes([protocol.ERROR]) + struct.pack("<I", 100) + b"short",
        "a string of 100 bytes in a message of 10",
    ),
    "string over the limit": (
        bytes([protocol.ERROR]) + struct.pack("<I", 5000) + b"x" * 5000,
        r"a string of 5000 bytes \(at most 4000\)",
    ),
    "over the reply limit": (
        protocol.encode_error("") + b"\x00" * protocol.MAX_REPLY_BYTES,
        r"a reply of \d+ bytes \(at most 8192\)",
    ),
}


@pytest.mark.parametrize("name", BAD_REPLIES)
def test_malformed_replies_do_not_decode(name):
    """Each malformed reply is refused by the check meant for it (not by a later one that happens to trip)."""
    message, why = BAD_REPLIES[name]
    with pytest.raises(protocol.ProtocolError, match=why):
        protocol.decode_reply(message)


@pytest.mark.parametrize("message", [b"", b"\x09", b"\x01\x00", protocol.encode_crop(1, 2, 3, 4)[:-1]])
def test_malformed_requests_do_not_decode(message):
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_request(message)


def test_the_decoder_process_imports_neither_torch_nor_ean(tmp_path):
    code = (
        f"import sys; sys.path.insert(0, {os.path.dirname(CHILD_SCRIPT)!r}); import decode_child; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.split('.')[0] == 'ean'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert result.stdout.strip() == "[]"


# A decoder that says READY, then answers each request with the next of the raw writes in a JSON file (hex).
FAKE_DECODER = """
import json, os, sys, time
from multiprocessing.connection import Connection

writes = [bytes.fromhex(w) for w in json.load(open(sys.argv[1]))]
requests = Connection(int(sys.argv[2]), writable=False)
replies = int(sys.argv[3])
os.write(replies, bytes.fromhex({ready!r}))
for write in writes:
    requests.recv_bytes()
    os.write(replies, write)
time.sleep(600)
"""


def frame(message: bytes) -> bytes:
    """``message`` as ``Connection.send_bytes`` frames it."""
    return struct.pack("!i", len(message)) + message


class MakesAFolder:
    """Unpickling it calls ``os.mkdir(path)``: what a taken-over decoder could send instead of a reply."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


OPENED = frame(protocol.encode_opened(10))
DECODED = frame(protocol.encode_decoded((2, 48, 64, 3)))
# (writes answering open, decode, crop; the last is the hostile one), what the error says
HOSTILE = {
    "pickle that runs code": (None, "unknown reply type 0x80"),  # made in the test: a folder in its tmp_path
    "pickle of an old reply": ([frame(pickle.dumps(("ok", 10)))], "unknown reply type"),
    "unknown type": ([frame(b"\x42")], "unknown reply type 0x42"),
    "wrong length": ([frame(b"\x82\x01\x02\x03")], "cut short"),
    "negative frame count": ([frame(protocol.encode_opened(-5))], "negative frame count"),
    "absurd frame count": ([frame(protocol.encode_opened(1 << 40))], "1099511627776 frames"),
    "ready out of turn": ([frame(protocol.encode_ready())], "ready where opened was due"),
    "decoded for an open": ([DECODED], "decoded where opened was due"),
    "huge frame": ([struct.pack("!i", 1 << 30) + b"\x82"], "a reply of 1073741824 bytes"),
    "large-message header": ([struct.pack("!iQ", -1, 9) + protocol.encode_opened(1)], "a reply of -1 bytes"),
    "shape of 200 dimensions": ([OPENED, frame(bytes([protocol.DECODED, 200]) + b"\x00" * 1600)], "200 dimensions"),
    "absurd frame side": ([OPENED, frame(protocol.encode_decoded((2, 1 << 40, 64, 3)))], "frames of shape"),
    "frames not asked for": ([OPENED, frame(protocol.encode_decoded((3, 48, 64, 3)))], "for 2 indices"),
    "negative frame side": ([OPENED, frame(protocol.encode_decoded((2, -48, 64, 3)))], "negative dimension"),
    "region beyond the shared file": (
        [OPENED, DECODED, frame(protocol.encode_cropped((2, 48, 64, 3), 1 << 30))],
        "in a buffer of 1073741824 (0 shared)",
    ),
    "region of another shape": (
        [OPENED, DECODED, frame(protocol.encode_cropped((2, 8, 8, 3), 1 << 20))],
        "region of shape (2, 8, 8, 3)",
    ),
    "negative buffer size": ([OPENED, DECODED, frame(protocol.encode_cropped((2, 48, 64, 3), -1))], "negative buffer"),
}
for seed, size in enumerate([1, 9, 64, 4000]):
    HOSTILE[f"random bytes {seed}"] = ([frame(np.random.default_rng(seed).bytes(size))], "")
for seed, (kind, size) in enumerate([(protocol.OPENED, 8), (protocol.OPENED, 8), (protocol.DECODED, 33)] * 2):
    body = bytes([kind]) + np.random.default_rng(100 + seed).bytes(size)  # a known type, random fields
    HOSTILE[f"random fields {seed}"] = ([OPENED, frame(body)] if kind == protocol.DECODED else [frame(body)], "")
for seed, kind in enumerate([protocol.CROPPED, protocol.ERROR] * 2):
    body = bytes([kind]) + np.random.default_rng(200 + seed).bytes(41)
    HOSTILE[f"random fields {kind:x} {seed}"] = ([OPENED, DECODED, frame(body)], "")


def fake_reader(tmp_path, writes, timeout_s=2.0, ready: bytes | None = None):
    """A reader whose decoder says ``ready`` (default: READY), then answers with ``writes``, one a request."""
    script, replies = tmp_path / "fake_decoder.py", tmp_path / "replies.json"
    script.write_text(FAKE_DECODER.format(ready=(ready or frame(protocol.encode_ready())).hex()))
    replies.write_text(json.dumps([w.hex() for w in writes]))
    return SubprocessVideoReader(timeout_s, command=[sys.executable, str(script), str(replies)])


def ask(reader, path, requests):
    media = reader.open(path)
    if requests > 1:
        decoded = media.decode(np.array([0, 1]))
        if requests > 2:
            decoded.crop()


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_reply_is_refused_as_a_bad_file_and_nothing_runs(name, tmp_path):
    marker = tmp_path / "pwned"
    writes, message = HOSTILE[name]
    writes = writes or [frame(pickle.dumps(MakesAFolder(str(marker))))]
    reader = fake_reader(tmp_path, writes)
    path = str(tmp_path / "hostile.mp4")
    with pytest.raises(BadMediaError) as error:
        ask(reader, path, len(writes))
    assert not marker.exists()  # pickle.loads would have made it
    assert error.value.path == path
    assert message in error.value.reason
    assert error.value.reason.startswith("the decoder process sent an invalid reply")
    assert reader._child is None  # killed: a fresh decoder reads the next file
    reader.close()


def test_a_decoder_that_starts_with_a_pickle_is_not_used_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    reader = fake_reader(tmp_path, [], ready=frame(pickle.dumps(MakesAFolder(str(marker)))))
    with pytest.raises(RuntimeError, match="did not start"):
        reader.open(str(tmp_path / "any.mp4"))
    assert not marker.exists() and reader._child is None


def test_a_reply_cut_short_times_out_instead_of_blocking(tmp_path):
    reader = fake_reader(tmp_path, [frame(protocol.encode_opened(10))[:7]], timeout_s=1.0)
    with pytest.raises(BadMediaError, match="timed out after 1 s"):
        reader.open(str(tmp_path / "stalls.mp4"))
    assert reader._child is None


def test_after_a_hostile_reply_the_real_decoder_reads_the_next_file(tmp_path):
    reader = fake_reader(tmp_path, [frame(b"\x42")])
    with pytest.raises(BadMediaError, match="invalid reply"):
        reader.open(str(tmp_path / "hostile.mp4"))
    reader.command = [sys.executable, CHILD_SCRIPT]
    video = write_video(str(tmp_path / "ok.mp4"), 12)
    assert reader.open(video).get(np.array([0, 11])).shape == (2, 3, 48, 64)
    reader.close()
