"""The synthetic-video writer with a fault: ``python faulty_writer.py hang|fail NAME FOLDER FD``.

``hang`` makes writing video file NAME sleep (what an encoder stuck in C does); ``fail`` makes every video
raise a full disk. Tests put it in place of the writer's command (``generate.WRITER``)."""

import os
import sys
import time

from ean.data.synthetic import generate, writer


def main() -> int:
    fault, name, *rest = sys.argv[1:]
    real = generate.write_mp4

    def write_mp4(path, *args, **kwargs):
        if fault == "fail":
            raise OSError(28, "No space left on device")
        if os.path.basename(path) == name:
            time.sleep(120)  # the parent kills the writer long before
        return real(path, *args, **kwargs)

    generate.write_mp4 = write_mp4
    return writer.main(rest)


if __name__ == "__main__":
    sys.exit(main())
