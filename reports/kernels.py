"""``python -m reports.kernels STUDY ROW [--seed N]``: the paper's Fig. 10 for a trained trial.

Loads the trial's resolved config and last checkpoint (found through its MLflow run), takes a validation
video, and plots the EAB's kernel weights for it, its 1.6x spatial zoom and its 2x frame rate
(``ean.models.kernel_weights``) with ``reports.figures.plot_kernel_weights``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml
from mlflow.tracking import MlflowClient

from reports.figures import plot_kernel_weights
from study import mlflow_schema as S
from study.find import find_spec
from study.spec import SpecError, load_spec


def find_run(client: MlflowClient, study: str, row: str, seed: int):
    exp = client.get_experiment_by_name(study)
    if exp is None:
        raise SpecError(f"no MLflow experiment '{study}' at {client.tracking_uri}")
    query = f"{S.trial_filter(study)} AND tags.`{S.TAG_ROW}` = '{row}' AND tags.`{S.TAG_SEED}` = '{seed}'"
    runs = [r for r in client.search_runs([exp.experiment_id], query) if r.info.status == S.STATUS_FINISHED]
    if not runs or not checkpoint_of(runs[0]).is_file():
        raise SpecError(f"no FINISHED run with a checkpoint on this machine for {study}/{row}/seed{seed}")
    return runs[0]


def checkpoint_of(run) -> Path:
    """The trial's last checkpoint (tag ``ean.checkpoint``, else ``<ean.workdir>/checkpoints/last.pt``)."""
    tags = run.data.tags
    return Path(tags.get(S.TAG_CHECKPOINT) or Path(tags.get(S.TAG_WORKDIR, "")) / "checkpoints" / "last.pt")


def figure_for_run(client: MlflowClient, run, out: Path, stage: int, video: int) -> list[Path]:

    from ean.data import build_dataset, normalize_clips
    from ean.models import build_model
    from ean.models.kernel_weights import kernel_weight_variants
    from ean.train import load_checkpoint

    config = yaml.safe_load(Path(client.download_artifacts(run.info.run_id, S.ARTIFACT_CONFIG)).read_text())
    model = build_model(config)
    model.load_state_dict(load_checkpoint(checkpoint_of(run))["model"])
    data = {**config["data"], "test_clips": 1, "test_crops": 1}
    clip = build_dataset(data, "val")[video][0]
    weights = kernel_weight_variants(model, normalize_clips(clip.unsqueeze(0)), stage)
    arrays = {name: {axis: np.asarray(v) for axis, v in axes.items()} for name, axes in weights.items()}
    return plot_kernel_weights(arrays, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.kernels", description=__doc__)
    parser.add_argument("study", help="a study spec file or name (table8 -> studies/table8.yaml)")
    parser.add_argument("row", help="the row id of a trained EAB model (dynamic or static M)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stage", type=int, default=4, help="the EAB after this stage (default 4)")
    parser.add_argument("--video", type=int, default=0, help="index of the validation video (default 0)")
    parser.add_argument("--mlflow-uri", default=None, help="default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
    parser.add_argument("--out", default=None, help="default: outputs/reports/<study>/figures/<study>_kernels_<row>")
    args = parser.parse_args(argv)
    import os

    uri = args.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    try:
        spec = load_spec(find_spec(args.study))
        client = MlflowClient(uri)
        run = find_run(client, spec.name, args.row, args.seed)
        out = Path(args.out or f"outputs/reports/{spec.name}/figures/{spec.name}_kernels_{args.row}")
        out.parent.mkdir(parents=True, exist_ok=True)
        paths = figure_for_run(client, run, out, args.stage, args.video)
    except (SpecError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
