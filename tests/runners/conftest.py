"""Shared pieces of the runner's integration tests: a tiny study on synthetic data, a real MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.layouts import something_v1_layout

REPO = Path(__file__).resolve().parents[2]

#: A study small enough for seconds per trial on a 2-core CPU.
TINY_OVERRIDES = [
    "data=synthetic",
    "trainer=smoke",
    "model.pretrained=null",
    "model.backbone=resnet18",
    "model.num_segments=4",
    "model.input_size=64",
    "data.resize=72",
    "data.num_videos=24",
    "data.size=64",
    "trainer.max_steps_per_epoch=2",
    "trainer.batch_size=4",
]


def tiny_spec(rows: list[dict], name: str = "tiny", seeds=(0,)) -> dict:
    return {
        "name": name,
        "title": "A tiny study",
        "overrides": TINY_OVERRIDES,
        "seeds": list(seeds),
        "protocol": {"clips": 1, "crops": 1},
        "columns": ["params", "flops", "top1", "top5"],
        "rows": rows,
    }


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def study_dir(tmp_path, monkeypatch):
    """A working directory with its own MLflow store and storage path."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli_args(workdir: Path, spec: Path, *extra: str) -> list[str]:
    return [str(spec), "--mlflow-uri", f"sqlite:///{workdir / 'mlflow.db'}", "--storage", str(workdir / "runs"), *extra]


def run_subprocess(workdir: Path, args: list[str], env: dict | None = None, timeout: float = 600):
    return subprocess.run(
        [sys.executable, "-m", "runners.run", *args],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def trial_runs(workdir: Path, study: str = "tiny") -> list:
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name(study)
    return client.search_runs([exp.experiment_id], "tags.`ean.kind` = 'trial'", max_results=1000)


@pytest.fixture
def imagenet_v1(tmp_path, monkeypatch) -> Path:
    """torch's hub cache with files where torchvision's ResNet-50 IMAGENET1K_V1 weights and its COCO Faster R-CNN
    weights (Table 7) go (planning only checks that they are there; nothing here loads them)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = tmp_path / "torch" / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"placeholder")
    path.with_name("fasterrcnn_resnet50_fpn_coco-258fb6c6.pth").write_bytes(b"placeholder")
    return path


@pytest.fixture
def sth_v1(tmp_path) -> Path:
    return something_v1_layout(tmp_path / "sth-v1")
