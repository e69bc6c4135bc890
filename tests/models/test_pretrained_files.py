"""Weight files are data: a named source's file must carry its hash, and no file runs code when loaded."""

from __future__ import annotations

import pickle
import re

import pytest
import torch

from ean.models import resolve_model_config
from ean.models.build import build_backbone
from ean.models.pretrained import (
    PretrainedMismatchError,
    PretrainedWeightsError,
    hub_file,
    load_pretrained,
    read_state_dict,
)
from ean.trial import _check_weights_file, check_trial_config


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


def weights_of(backbone: str, prefix: str = "") -> dict[str, torch.Tensor]:
    """Random weights of a torchvision ResNet, their keys prefixed (as another codebase saves them)."""
    import torchvision

    return {prefix + k: v for k, v in getattr(torchvision.models, backbone)().state_dict().items()}


@pytest.mark.parametrize(
    ("saved", "problem"),
    [
        (("resnet50", "base_model."), "not one of its tensors has a key of the resnet50 backbone"),
        (("resnet18", ""), "of its tensors have other shapes than the resnet50 backbone's"),
    ],
    ids=["another-codebase's-keys", "another-network"],
)
def test_weights_that_do_not_fit_the_backbone_are_refused_at_planning_and_at_loading(tmp_path, saved, problem):
    """Before: the matching keys (none, or some) were loaded, the rest kept random, and the trial trained under
    the file's name."""
    path = tmp_path / "w.pth"
    torch.save(weights_of(*saved), path)
    model = {"backbone": "resnet50", "pretrained": str(path), "block": "none", "regions": "none"}
    problems = check_trial_config({"model": model, "data": {"dataset": "synthetic", "root": str(tmp_path / "d")}})
    assert any(problem in p and str(path) in p for p in problems), problems
    backbone = build_backbone(resolve_model_config(model))
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    with pytest.raises(PretrainedMismatchError, match=problem):
        load_pretrained(backbone, str(path), "resnet50")
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())  # nothing loaded


def test_the_weights_of_a_smaller_network_of_the_same_layout_are_refused(tmp_path):
    """resnet50's weights for a resnet101: every key resnet50 has fits, but layer3.6 to layer3.22 would stay
    random; a file holding one tensor likewise."""
    path = tmp_path / "w.pth"
    torch.save(weights_of("resnet50"), path)
    model = {"backbone": "resnet101", "pretrained": str(path)}
    (problem,) = _check_weights_file({"model": model})
    assert re.search(r"lacks \d+ tensors of torchvision's resnet101 \(layer3\.6\.", problem), problem
    backbone = build_backbone(resolve_model_config(model))
    with pytest.raises(PretrainedMismatchError, match="tensors of torchvision's resnet101"):
        load_pretrained(backbone, str(path), "resnet101")
    torch.save({"conv1.weight": weights_of("resnet50")["conv1.weight"]}, path)
    (problem,) = _check_weights_file({"model": {"backbone": "resnet50", "pretrained": str(path)}})
    assert "lacks 264 tensors of torchvision's resnet50" in problem


def test_weights_saved_without_batchnorm_step_counters_fit(tmp_path):
    """Files saved before torch 0.4.1 (torchvision's first ImageNet releases among them) have no
    ``num_batches_tracked``: they fit, at planning and at loading."""
    path = tmp_path / "w.pth"
    torch.save({k: v for k, v in weights_of("resnet50").items() if "num_batches_tracked" not in k}, path)
    model = {"backbone": "resnet50", "pretrained": str(path)}
    assert _check_weights_file({"model": model}) == []
    assert len(load_pretrained(build_backbone(resolve_model_config(model)), str(path), "resnet50").matched) == 265


def test_a_backbone_that_cannot_be_built_on_the_meta_device_is_not_fit_checked(tmp_path, monkeypatch):
    """A plugin's backbone may compute values while it is built (``torch.linspace(...).tolist()``): planning
    goes on without the check instead of failing with a traceback."""
    import ean.trial

    def needs_data(cfg):
        return torch.linspace(0, 0.1, 4).tolist()

    monkeypatch.setattr(ean.trial, "build_backbone", needs_data)
    ean.trial._backbone_shapes.cache_clear()
    torch.save(weights_of("resnet50", "base_model."), tmp_path / "w.pth")
    try:
        assert _check_weights_file({"model": {"backbone": "resnet50", "pretrained": str(tmp_path / "w.pth")}}) == []
    finally:
        ean.trial._backbone_shapes.cache_clear()


def test_weights_that_fit_load_whatever_the_file_format(tmp_path):
    state = weights_of("resnet50")
    for name, zipped in (("new.pth", True), ("legacy.pth", False)):
        torch.save(state, tmp_path / name, _use_new_zipfile_serialization=zipped)
        model = {"backbone": "resnet50", "pretrained": str(tmp_path / name)}
        assert _check_weights_file({"model": model}) == []
        backbone = build_backbone(resolve_model_config(model))
        assert len(load_pretrained(backbone, str(tmp_path / name), "resnet50").matched) == 318
        assert torch.equal(backbone.state_dict()["conv1.weight"], state["conv1.weight"])
