"""runners.process_exit.exit_now: a command ends as a normal exit would, less Python's teardown.

Each case runs a small script in a fresh interpreter whose stdout is a pipe, buffered as by default (without
PYTHONUNBUFFERED, which some shells and CI set), so that a lost flush or a skipped exit handler shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.runners.conftest import REPO


def run_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_exit_handlers_run_the_output_is_whole_and_the_status_kept(tmp_path):
    result = run_script(
        tmp_path,
        """
        import atexit, io, sys
        from pathlib import Path
        from runners.process_exit import exit_now

        atexit.register(lambda: Path(sys.argv[1], "handler-ran").write_text("yes"))
        print("the table", end="")  # stays in the stream's buffer until flushed
        print("last line", file=sys.stderr, end="")
        sys.stdout = io.StringIO()  # replaced, as some libraries do: the original is flushed too
        exit_now(3)
        """,
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout == "the table"
    assert result.stderr == "last line"
    assert (tmp_path / "handler-ran").read_text() == "yes"


def test_a_thread_still_working_finishes_before_the_process_ends(tmp_path):
    result = run_script(
        tmp_path,
        """
        import sys, threading, time
        from pathlib import Path
        from runners.process_exit import exit_now

        def work():
            time.sleep(1.0)
            Path(sys.argv[1], "thread-done").write_text("yes")

        threading.Thread(target=work).start()  # not a daemon: a normal exit waits for it
        exit_now(0)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "thread-done").read_text() == "yes"
