"""Writes the fixture study's runs to a real MLflow store, as the study runner would (study.mlflow_schema).

Fixed numbers, so tables built from the store are deterministic: several seeds, a missing seed, failed
runs (one superseded by a later finished run), a running run, and runs that must be left out (another
protocol, another dataset, another code version, a row not in the spec).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import yaml
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from study import mlflow_schema as S
from study.spec import StudySpec, spec_hash

SPEC_PATH = Path(__file__).parent / "data" / "fixture_blocks.yaml"
T0_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC: run start times are fixed, one minute apart
GIT_COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_STUDY_HASH = "0000deadbeef"

# (row, seed, status, top1, top5, tag overrides); rows in start-time order.
RUNS = [
    ("only_soitr", 0, "FINISHED", 49.1, 77.6, {}),
    ("only_soitr", 1, "FINISHED", 49.4, 77.9, {}),
    ("only_soitr", 2, "FINISHED", 49.4, 78.0, {}),
    ("s_block", 0, "FINISHED", 49.3, 78.0, {}),
    ("s_block", 1, "FINISHED", 49.8, 78.3, {}),
    ("s_block", 2, "FINISHED", 49.5, 78.1, {}),
    ("l_block", 0, "FINISHED", 50.1, 78.2, {}),
    ("l_block", 1, "FINISHED", 50.6, 78.6, {}),
    ("incep_block", 0, "FINISHED", 50.8, 78.7, {}),
    ("incep_block", 1, "FAILED", None, None, {"error": "CUDA out of memory"}),
    ("incep_block", 2, "FAILED", None, None, {"error": "worker died"}),
    ("eab", 0, "FINISHED", 51.7, 79.4, {}),
    ("eab", 1, "FINISHED", 52.1, 79.6, {}),
    ("eab", 2, "FINISHED", 51.9, 79.5, {}),
    ("dead_block", 0, "FAILED", None, None, {"error": "NaN loss at epoch 3"}),
    ("dead_block", 1, "RUNNING", None, None, {}),
    ("old_row", 0, "FINISHED", 40.0, 70.0, {}),
    # a second invocation of the runner: the retry of incep_block seed 2, and runs of other settings
    ("incep_block", 2, "FINISHED", 50.6, 78.9, {"parent": 1}),
    ("eab", 0, "FINISHED", 53.0, 80.1, {"parent": 1, "protocol": "10x3"}),
    ("eab", 1, "FINISHED", 60.0, 85.0, {"parent": 1, "dataset": "kinetics400"}),
    ("eab", 2, "FINISHED", 52.4, 79.9, {"parent": 2, "code_version": "v2"}),
]
# Model size per row: (trainable parameters, multiply-accumulates per clip).
MODEL = {
    "only_soitr": (30_312_000, 33.82e9),
    "s_block": (30_934_000, 36.08e9),
    "l_block": (31_534_000, 36.08e9),
    "incep_block": (30_912_000, 36.02e9),
    "eab": (36_021_000, 36.11e9),
    "dead_block": (31_005_000, 36.52e9),
    "old_row": (20_000_000, 20.0e9),
}
CLASSES = (
    "Pushing something from left to right",
    "Lifting a surface with something on it but not enough for it to slide down",
    "Pretending to put something into something",
    "Pulling two ends of something so that it gets stretched",
    "Dropping something",
    "Holding something",
)
VIDEOS_PER_CLASS = 10
BASE_CORRECT = np.array([6, 3, 4, 3, 7, 5])
GAIN = {
    "only_soitr": [0, 0, 0, 0, 0, 0],
    "s_block": [0, 1, 0, 1, 0, 0],
    "l_block": [1, 2, 1, 1, 0, 0],
    "incep_block": [0, 3, 2, 1, -1, 0],
    "eab": [1, 4, 3, 2, 0, 1],
    "old_row": [0, 0, 0, 0, 0, 0],
}


def write_fixture_store(root: Path) -> tuple[str, StudySpec]:
    """Creates ``root/mlflow.db`` with the fixture study's runs; returns (tracking URI, spec)."""
    from study.spec import load_spec

    spec = load_spec(SPEC_PATH)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(
        spec.name, artifact_location=(root / "artifacts").as_uri(), tags={S.EXPERIMENT_KIND_TAG: S.EXPERIMENT_KIND}
    )
    hashes = [spec_hash(spec), spec_hash(spec), OTHER_STUDY_HASH]
    parents = [_study_run(client, exp, spec.name, h, T0_MS + i) for i, h in enumerate(hashes)]
    for i, (row, seed, status, top1, top5, extra) in enumerate(RUNS):
        parent = parents[extra.get("parent", 0)]
        _trial_run(client, exp, spec, parent, T0_MS + 60_000 * (i + 1), row, seed, status, top1, top5, extra, root)
    return uri, spec


def scores_arrays(row: str) -> dict[str, np.ndarray]:
    """Scores of a row: class c has BASE_CORRECT[c] + GAIN[row][c] of its videos right; 2 clips a video."""
    k = len(CLASSES)
    correct = BASE_CORRECT + np.array(GAIN[row])
    lines, labels, videos = [], [], []
    for c in range(k):
        for j in range(VIDEOS_PER_CLASS):
            pred = c if j < correct[c] else (c + 1) % k
            for clip_weight in (0.5, 0.4):
                s = np.full(k, (1 - clip_weight) / (k - 1), dtype=np.float32)
                s[pred] = clip_weight
                lines.append(s)
                labels.append(c)
                videos.append(c * VIDEOS_PER_CLASS + j)
    return {
        "scores": np.stack(lines),
        "labels": np.array(labels),
        "video_index": np.array(videos),
        "class_names": np.array(CLASSES),
    }


def _study_run(client: MlflowClient, exp: str, study: str, study_hash: str, start: int) -> str:
    tags = {S.TAG_KIND: S.KIND_STUDY, S.TAG_STUDY: study, S.TAG_STUDY_HASH: study_hash}
    run = client.create_run(exp, start_time=start, tags=tags, run_name=f"{study}/study")
    client.set_terminated(run.info.run_id, "FINISHED", end_time=start + 3_600_000)
    return run.info.run_id


def _trial_run(client, exp, spec, parent, start, row, seed, status, top1, top5, extra, root: Path) -> None:
    protocol = extra.get("protocol", spec.protocol.tag)
    tags = {
        S.TAG_PARENT_RUN_ID: parent,
        S.TAG_KIND: S.KIND_TRIAL,
        S.TAG_STUDY: spec.name,
        S.TAG_ROW: row,
        S.TAG_ROW_LABEL: row,
        S.TAG_SEED: str(seed),
        S.TAG_TRIAL_KEY: f"{row}-{seed}-{protocol}",
        S.TAG_GIT_COMMIT: GIT_COMMIT,
        S.TAG_CODE_VERSION: extra.get("code_version", "v1"),
        S.TAG_DATA_FINGERPRINT: "sha256:5f1e",
        S.TAG_DATASET: extra.get("dataset", "something_v1"),
        S.TAG_PROTOCOL: protocol,
    }
    if "error" in extra:
        tags[S.TAG_ERROR] = extra["error"]
    run_id = client.create_run(exp, start_time=start, tags=tags, run_name=S.run_name(spec.name, row, seed)).info.run_id
    params, flops = MODEL[row]
    metrics = [Metric(S.METRIC_PARAMS, params, start, 0), Metric(S.METRIC_FLOPS, flops, start, 0)]
    if status == "FINISHED":
        metrics += [Metric(S.METRIC_TOP1, top1, start, 0), Metric(S.METRIC_TOP5, top5, start, 0)]
        metrics += [Metric(S.METRIC_TEST_LOSS, 2.5, start, 0), Metric(S.METRIC_TEST_VIDEOS, 40, start, 0)]
        metrics += [Metric(name, 1.0 / (e + 1), start, e) for e in range(3) for name in S.EPOCH_METRICS]
    config = {"model": {"block": row}, "data": {"dataset": tags[S.TAG_DATASET]}, "seed": seed}
    flat = [Param("model.block", row), Param("data.dataset", tags[S.TAG_DATASET]), Param("seed", str(seed))]
    client.log_batch(run_id, metrics=metrics, params=flat)
    if status == "FINISHED" and row in GAIN:
        _log_artifacts(client, run_id, root / "upload" / run_id, config, scores_arrays(row))
    if status != "RUNNING":
        client.set_terminated(run_id, status, end_time=start + 30_000)


def _log_artifacts(client: MlflowClient, run_id: str, tmp: Path, config: dict, scores: dict) -> None:
    tmp.mkdir(parents=True)
    (tmp / S.ARTIFACT_CONFIG).write_text(yaml.safe_dump(config))
    np.savez(tmp / "val_scores.npz", **scores)
    client.log_artifact(run_id, str(tmp / S.ARTIFACT_CONFIG))
    client.log_artifact(run_id, str(tmp / "val_scores.npz"), artifact_path=S.ARTIFACT_SCORES.rsplit("/", 1)[0])


if __name__ == "__main__":  # pragma: no cover - manual inspection: python -m tests.reports.mlflow_fixture DIR
    import sys

    t = time.time()
    print(write_fixture_store(Path(sys.argv[1])))
    print(f"{time.time() - t:.1f} s")
