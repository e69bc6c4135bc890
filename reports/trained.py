"""A study row's trained model, found through MLflow: what ``reports.kernels``, ``reports.saliency`` and
``reports.features`` share (finding the run, loading its config and checkpoint, naming the figure files, the
command line).

A trial run (``study.mlflow_schema``) carries its resolved config as the ``config.yaml`` artifact and the
location of its last checkpoint in the tags ``ean.checkpoint`` (else ``<ean.workdir>/checkpoints/last.pt``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ean.command_name import command_name
from reports.folder import shown_runs
from study import mlflow_schema as S
from study.mlflow_search import all_runs
from study.spec import SpecError, StudySpec
from study.tracking_check import TrackingUnreachable, check_tracking_uri, missing_sqlite_store


def find_run(client: MlflowClient, study: str, row: str, seed: int, column: str = ""):
    """The newest FINISHED trial run of (row, seed) that is not superseded and whose checkpoint is on this
    machine; in a study that compares datasets, of the dataset column ``column``.

    Raises:
        SpecError: no such experiment or run.
    """
    exp = client.get_experiment_by_name(study)
    if exp is None:
        raise SpecError(f"no MLflow experiment '{study}' at {client.tracking_uri}")
    query = f"{S.trial_filter(study)} AND tags.`{S.TAG_ROW}` = '{row}' AND tags.`{S.TAG_SEED}` = '{seed}'"
    if column:
        query += f" AND tags.`{S.TAG_COLUMN}` = '{column}'"
    runs = [r for r in all_runs(client, [exp.experiment_id], query) if r.info.status == S.STATUS_FINISHED]
    runs.sort(key=lambda r: (S.TAG_SUPERSEDED_BY in r.data.tags, -r.info.start_time))
    if not runs or not checkpoint_of(runs[0]).is_file():
        name = S.run_name(study, row, seed, column)
        raise SpecError(f"no FINISHED run with a checkpoint on this machine for {name}")
    return runs[0]


def checkpoint_of(run) -> Path:
    """The trial's last checkpoint (tag ``ean.checkpoint``, else ``<ean.workdir>/checkpoints/last.pt``)."""
    tags = run.data.tags
    return Path(tags.get(S.TAG_CHECKPOINT) or Path(tags.get(S.TAG_WORKDIR, "")) / "checkpoints" / "last.pt")


def run_config(client: MlflowClient, run) -> dict[str, Any]:
    """The trial's resolved config (its ``config.yaml`` artifact)."""
    return yaml.safe_load(Path(client.download_artifacts(run.info.run_id, S.ARTIFACT_CONFIG)).read_text())


def load_model(config: dict[str, Any], checkpoint: str | Path | None = None):
    """The network of ``config`` in eval mode, with the weights of ``checkpoint`` (None: random weights).

    ImageNet weights (``model.pretrained``) are not loaded: the checkpoint holds every weight.
    """
    from ean.models import build_model
    from ean.train import load_checkpoint

    model = build_model({**config["model"], "pretrained": None})
    if checkpoint is not None:
        model.load_state_dict(load_checkpoint(checkpoint)["model"])
    return model.eval()


@dataclass
class Trained:
    """A row's trained trial: its MLflow run, resolved config and model (eval mode)."""

    row: str
    run: Any
    config: dict[str, Any]
    column: str = ""
    folder: Path = Path("outputs") / "reports"  # where its figures go (``<folder>/figures``)

    @property
    def file_row(self) -> str:
        """The row as figure file names carry it: with its dataset column in a study that compares datasets."""
        return f"{self.row}_{self.column}" if self.column else self.row

    def model(self):
        """The network with the checkpoint's weights, in eval mode."""
        return load_model(self.config, checkpoint_of(self.run))

    def model_config(self) -> dict[str, Any]:
        """The model section with every default filled in (``ean.models.build.resolve_model_config``)."""
        from ean.models.build import resolve_model_config

        return resolve_model_config(self.config)


def trained(
    client: MlflowClient,
    spec: StudySpec,
    row: str,
    seed: int,
    dataset: str | None = None,
    out: str | Path | None = None,
) -> Trained:
    """The trained trial of ``row`` (a row of ``spec``) and ``seed``; in a study that compares datasets, the one
    on ``dataset`` (default: the first, the paper's). The run the table in the report folder ``out`` (default
    ``outputs/reports/<study>``, where the figures go) shows for that cell, when that folder has a report of the
    study, of this store, with that cell (``reports.folder``): the figures are of the model whose numbers sit
    beside them; else the newest (``find_run``), whose figures then go (without ``out``) beside the table of the
    invocation that made it (``outputs/reports/table8-smoke`` for a smoke run), never into the study's own
    folder. Says on stderr which run it took, and why.

    Raises:
        SpecError: the spec has no such row or dataset, or MLflow no finished run of it with a checkpoint here.
    """
    if row not in spec.row_ids:
        raise SpecError(f"no row {row!r} in study {spec.name!r}; rows: {', '.join(spec.row_ids)}")
    column = dataset or spec.columns_of_data[0]
    if column not in spec.columns_of_data:
        valid = ", ".join(spec.datasets) or "none (the study has one dataset)"
        raise SpecError(f"study {spec.name!r} has no dataset column {column!r}; --dataset: {valid}")
    folder = report_folder(out, spec.name)
    record = shown_runs(folder, spec.name)
    cell = _cell(record[0], row, seed, column if spec.datasets else "") if record else []
    newest = _why_newest(record, cell, folder, spec.name, client.tracking_uri, f"{row} seed {seed}")
    if newest:
        run = find_run(client, spec.name, row, seed, column)
        how = f"the newest FINISHED one: {newest}"
        if out is None and (invocation := _invocation_folder(client, run, spec.name)) != folder:
            folder = invocation
            how += f"; a run of another invocation than the spec's own: its figures go to {folder}, beside its table"
    else:
        run = _shown_run(client, cell, folder, row, seed)
        how = f"the one the table in {folder} shows"
    key = run.data.tags.get(S.TAG_TRIAL_KEY, "?")
    print(f"{row} seed {seed}: run {run.info.run_id} (trial key {key[:12]}), {how}", file=sys.stderr)
    return Trained(row, run, run_config(client, run), column, folder)


def _invocation_folder(client: MlflowClient, run, study: str) -> Path:
    """The report folder of the invocation (the parent run) that made a trial run: as the runner tagged it
    (``outputs/reports/table8-smoke-seeds-0``), else ``<study>-<profile>`` for a run of a ``--profile`` (runs
    made before the tag), else the study's own."""
    parent = run.data.tags.get(S.TAG_PARENT_RUN_ID)
    try:
        tags = client.get_run(parent).data.tags if parent else {}
    except MlflowException:
        tags = {}
    if tags.get(S.TAG_REPORT_FOLDER):
        return Path(tags[S.TAG_REPORT_FOLDER])
    profile = tags.get(S.TAG_PROFILE)
    return report_folder(None, f"{study}-{profile}" if profile else study)


def report_folder(out: str | Path | None, study: str) -> Path:
    """``out``, else ``outputs/reports/<study>`` (where ``reports.make`` writes the study's table)."""
    return Path(out) if out is not None else Path("outputs") / "reports" / study


def _cell(shown: list[dict], row: str, seed: int, column: str) -> list[dict]:
    """The runs a table shows for (row, seed[, dataset column])."""
    return [
        run
        for run in shown
        if (run.get("row"), run.get("seed")) == (row, seed) and (not column or run.get("column") == column)
    ]


def _why_newest(record, cell: list[dict], folder: Path, study: str, uri: str, name: str) -> str | None:
    """Why the figure is of the newest FINISHED run, not of the one the folder's table shows (None: it is of that
    one): the folder has no table of the study, its table is of another store's runs, or it has no such cell."""
    if record is None:
        return f"{folder} has no table of {study} (--out names a report's folder)"
    if record[1] and record[1] != uri:
        return f"the table in {folder} is of the runs at {record[1]}, not of {uri}"
    if not cell:
        return f"the table in {folder} has no cell of {name} (a row or seed it did not have)"
    return None


def _shown_run(client: MlflowClient, cell: list[dict], folder: Path, row: str, seed: int):
    """The FINISHED run with a checkpoint here among those the table in ``folder`` shows for a cell.

    Raises:
        SpecError: the table shows none FINISHED (the cell failed), this store has not its run, or its checkpoint
            is not here.
    """
    where = f"the table in {folder}"
    finished = [r for r in cell if r.get("status") == S.STATUS_FINISHED]
    if not finished:
        status = ", ".join(sorted({str(r.get("status")) for r in cell}))
        raise SpecError(f"{where} shows no FINISHED run of {row} seed {seed} (its run: {status}); nothing to draw")
    try:
        run = client.get_run(finished[0]["run_id"])
    except MlflowException:
        raise SpecError(
            f"the run {finished[0]['run_id']} {where} shows for {row} seed {seed} is not in the MLflow store at "
            f"{client.tracking_uri}: --mlflow-uri names the store the table was made from"
        ) from None
    if not checkpoint_of(run).is_file():
        raise SpecError(
            f"the run {run.info.run_id} {where} shows for {row} seed {seed} has no checkpoint on this machine "
            f"({checkpoint_of(run)}); --out names another report's folder"
        )
    return run


def qualifying_rows(client: MlflowClient, spec: StudySpec, accepts: Callable[[dict[str, str]], bool]) -> list[str]:
    """The rows of ``spec`` with a FINISHED trial run whose model ``accepts``, in the spec's order.

    ``accepts`` gets the run's model params (the flattened config's ``model.*`` keys without the prefix, as
    strings: ``{"regions": "saliency", "block": "eab", ...}``), the model defaults filling missing keys.
    """
    from ean.models.build import MODEL_DEFAULTS

    exp = client.get_experiment_by_name(spec.name)
    if exp is None:
        return []
    defaults = {k: str(v) for k, v in MODEL_DEFAULTS.items() if isinstance(v, str)}
    found = set()
    for run in all_runs(client, [exp.experiment_id], S.trial_filter(spec.name)):
        row = run.data.tags.get(S.TAG_ROW)
        model = {**defaults, **{k[6:]: v for k, v in run.data.params.items() if k.startswith("model.")}}
        if run.info.status == S.STATUS_FINISHED and row in spec.row_ids and accepts(model):
            found.add(row)
    return [r for r in spec.row_ids if r in found]


def figure_stem(out: str | Path | None, study: str, kind: str, row: str, seed: int, video: int) -> Path:
    """``<out>/figures/<study>_<kind>_<row>_seed<seed>_video<video>`` (``out`` default ``outputs/reports/<study>``,
    the directory ``reports.make`` writes to)."""
    return report_folder(out, study) / "figures" / f"{study}_{kind}_{row}_seed{seed}_video{video}"


def base_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The arguments every trained-model figure takes: STUDY ROW, --seed, --video, --mlflow-uri, --out."""
    parser = argparse.ArgumentParser(
        prog=command_name(prog), description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("study", help="a study spec file or name (table8 -> studies/table8.yaml)")
    parser.add_argument("row", help="the row id of a trained model")
    parser.add_argument("--seed", type=int, default=0, help="the trial's seed (default 0)")
    parser.add_argument(
        "--dataset",
        default=None,
        help="in a study that compares datasets (Table 1), the dataset column of the trial (default: the first)",
    )
    parser.add_argument("--video", type=int, default=0, help="index of the validation video (default 0)")
    parser.add_argument("--mlflow-uri", default=None, help="default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
    parser.add_argument(
        "--out",
        default=None,
        help="report directory, as reports.make's (default outputs/reports/<study>); figures go to <out>/figures/",
    )
    return parser


def tracking_uri(given: str | None) -> str:
    """``--mlflow-uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    return given or S.default_tracking_uri()


def checked_client(args: argparse.Namespace) -> MlflowClient:
    """The MLflow client of a figure command's parsed arguments, once its store and ``--out`` are checked (before
    anything is loaded or drawn; the figure commands share it).

    Raises:
        ValueError: ``--mlflow-uri`` names no MLflow store (a missing sqlite file, an unreachable server), or
            ``--out`` (or a folder above it) is a file.
    """
    uri = tracking_uri(args.mlflow_uri)
    try:
        check_tracking_uri(uri)
    except TrackingUnreachable as err:
        raise ValueError(str(err)) from None
    if args.out is not None:
        path = (Path(args.out) / "figures").absolute()
        while not path.exists():
            path = path.parent
        if not path.is_dir():
            raise ValueError(f"--out {args.out}: {path} is a file; the figures go to the folder <out>/figures/")
    store = missing_sqlite_store(uri)
    if store is not None:
        raise ValueError(f"no MLflow store at {store} (--mlflow-uri {uri}): run the study first, or pass its store")
    return MlflowClient(uri)


def run_figure_command(draw: Callable[[], list[Path]]) -> int:
    """Runs a figure command: prints the files ``draw()`` wrote (exit status 0), or the problem that stopped
    it, a bad spec, row or trial (2)."""
    try:
        paths = draw()
    except (SpecError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(str(p) for p in paths))
    return 0
