"""A failed trial's error in one line: the exception's own line, not the last line of its message."""

from runners.scheduler import error_line

RAY_ERROR = """Failure # 1 (occurred at 2026-12-07_15-40-00)
ray::ImplicitFunc.train() (pid=123, ip=127.0.0.1)
  File "runners/trainable.py", line 45, in _run_fit
    return fit(train_config(config), workdir, report)
ean.data.errors.DataError: 1 of 41 files are bad, more than max_bad_fraction=0.01 allows:
  corrupt.mp4: cannot open video
List them all with `python -m ean.data.check`, then fix or remove them, or raise max_bad_fraction.
"""


def test_the_error_line_is_the_exceptions_own():
    assert error_line(RAY_ERROR).startswith("ean.data.errors.DataError: 1 of 41 files are bad")
    assert error_line("Traceback:\n  x\nRuntimeError: CUDA out of memory") == "RuntimeError: CUDA out of memory"
    assert error_line("a worker died\n") == "a worker died"  # no exception named: the last line
    assert error_line("") == "the trial failed (no message)"
