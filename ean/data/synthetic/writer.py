"""The synthetic-video writer process: ``python -m ean.data.synthetic.writer FOLDER FD``.

Reads the dataset's parameters (JSON) on stdin, writes the videos and then the annotation files into
``FOLDER`` (see :func:`ean.data.synthetic.generate._write`), and writes a line to the pipe ``FD`` after each:
``done``, or the error that stopped it (its traceback goes to stderr). :func:`generate_synthetic` runs it as
a fresh process, never a fork: forking a process that has threads (Ray's, torch's) can leave the encoder's
copy with a lock held for ever, or abort it. It imports numpy and PyAV, not torch.
"""

from __future__ import annotations

import json
import os
import sys

from ean.data.synthetic import generate


def main(argv: list[str] | None = None) -> int:
    folder, fd = argv if argv is not None else sys.argv[1:]
    params = json.load(sys.stdin)
    with os.fdopen(int(fd), "wb", buffering=0) as progress:
        try:
            generate._write(folder, params, lambda: progress.write(b"done\n"))
        except BaseException as e:  # the parent raises it; the traceback stays here, on stderr
            message = f"{type(e).__name__}: {e}".replace("\n", " ")
            progress.write(message.encode() + b"\n")
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
