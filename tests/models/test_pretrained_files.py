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
