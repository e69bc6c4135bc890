"""``ean.data`` loads its names on first use: a process that needs part of it does not import torch."""

import subprocess
import sys

import ean.data


def test_every_public_name_resolves_and_none_other():
    for name in ean.data.__all__:
        assert getattr(ean.data, name) is not None
    assert set(ean.data.__all__) <= set(dir(ean.data))
    assert "synthetic" in ean.data.DATASETS  # the builder registered the datasets
    try:
        ean.data.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("an unknown name resolved")


def test_the_synthetic_writer_and_the_errors_import_no_torch():
    code = (
        "import sys, ean.data, ean.data.synthetic.writer; from ean.data import DataError; print('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
