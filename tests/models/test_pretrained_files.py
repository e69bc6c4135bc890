"""Weight files are data: a named source's file must carry its hash, and no file runs code when loaded."""

from __future__ import annotations

import pickle

import pytest
import torch

from ean.models.pretrained import PretrainedWeightsError, hub_file, read_state_dict


class RunsCode:
    """Unpickling this creates ``marker``: a weights file that runs code when loaded with full pickle."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_named_sources_file_with_another_hash_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = hub_file("imagenet1k_v1", "resnet18")
    path.parent.mkdir(parents=True)
    torch.save({"conv1.weight": torch.zeros(1)}, path)  # a valid state dict, but not torchvision's file
    with pytest.raises(PretrainedWeightsError, match="sha256 does not start with"):
        read_state_dict("imagenet1k_v1", "resnet18")


def test_a_weights_file_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "weights.pth"
    torch.save({"conv1.weight": torch.zeros(1), "extra": RunsCode(marker)}, path, pickle_module=pickle)
    with pytest.raises(pickle.UnpicklingError):
        read_state_dict(str(path), "resnet18")
    assert not marker.exists()


def test_the_download_command_without_network_says_what_to_fetch_and_where_in_one_line(tmp_path, monkeypatch, capsys):
    import urllib.error

    import ean.models.pretrained as pretrained
    from ean.download_weights import main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, dst, hash_prefix=None):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(pretrained.torch.hub, "download_url_to_file", offline)
    assert main(["resnet50", "imagenet1k_v1"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: cannot download https://")
    assert str(hub_file("imagenet1k_v1", "resnet50")) in err and "model.pretrained=PATH" in err


def test_the_download_command_runs_as_a_module_without_warnings(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "ean.download_weights", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "resnet50" in done.stdout, done.stderr


def test_the_download_command_names_a_damaged_file_already_there(tmp_path, monkeypatch, capsys):
    from ean.download_weights import main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = hub_file("imagenet1k_v1", "resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"a download cut short")
    assert main(["resnet18"]) == 1
    err = capsys.readouterr().err
    assert "sha256 does not start with" in err and str(path) in err and "delete it" in err and "network" not in err


def test_a_weights_file_put_in_place_with_the_same_size_and_mtime_is_hashed_again(tmp_path):
    """The identity (a trial key's part) of a file replaced by another of the same size with its mtime set back
    (``cp -p``, ``touch -r``) is the new contents', not the memo of the old."""
    import os

    from ean.models.pretrained import weights_identity

    path = tmp_path / "w.pt"
    path.write_bytes(b"a" * 64)
    first = weights_identity(str(path), "resnet50")
    stat = path.stat()
    path.write_bytes(b"b" * 64)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert weights_identity(str(path), "resnet50") != first
