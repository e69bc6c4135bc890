"""What the study runner writes to MLflow and the reports read: the one place these names are defined.

The runner (``runners``) imports these constants to write runs; ``reports`` imports them to read. Layout:

- Experiment: named after the study (``StudySpec.name``), tagged ``mlflow.experimentKind`` =
  ``custom_model_development`` so the MLflow UI opens it on the training runs table.
- Every run the runner creates (parent, trial, reused, ensemble) is born with MLflow's system tags, which
  its UI shows: ``mlflow.source.git.commit`` (the driver's commit), ``mlflow.source.name``
  (``python -m runners.run``), ``mlflow.source.type`` (``LOCAL``) and ``mlflow.user``. They say which
  invocation created the run; ``ean.git_commit`` says which code computed its result (on a reused run: the
  source run's).
- One parent run per runner invocation that trains or reuses a trial (an invocation with every trial cached
  here opens none): tags ``ean.kind`` = ``study``, ``ean.study``, ``ean.study_hash`` (``study.spec.spec_hash``
  of the spec file), ``ean.profile``, ``ean.command`` and ``mlflow.note.content`` (the run's description in
  the UI: the spec's title, then the study's Markdown table once the report is made). Artifacts: ``spec.yaml``
  (the spec file as given), ``plan.json`` (the resolved plan, as ``--dry-run --json`` prints it) and, after
  the report, ``report/`` (the files ``reports.make`` wrote: ``<study>.md``, ``.tex``, the CSVs, and
  ``report/figures/``).
- One child run per trial (row x seed), run name ``"{study}/{row}/seed{seed}"``
  (``run_name``): tags ``mlflow.parentRunId``, ``ean.kind`` = ``trial``, ``ean.study``, ``ean.row``,
  ``ean.row_label``, ``ean.seed`` (an integer as a string), ``ean.trial_key``, ``ean.git_commit``,
  ``ean.code_version``, ``ean.code_digest`` (the sources' contents), ``ean.data_fingerprint``,
  ``ean.dataset`` (the dataset's registry name), ``ean.protocol`` (clips x crops, e.g. ``"1x1"``),
  ``ean.checkpoint`` and ``ean.workdir`` (where its files lie), ``ean.ray_node`` (the Ray node id of the
  process that computed its result; DDP: rank 0's) and, on
  failed runs, ``ean.error`` (the reason). A run that reuses another study's FINISHED run of the same trial
  key (``runners.reuse``) carries ``ean.reused_from`` (that run's id) and ``ean.reused_from_name`` and copies
  of its metrics, scores and checkpoint location.
  Status FINISHED, FAILED, RUNNING or KILLED. Several runs of one trial key exist only when the older
  ones FAILED or were KILLED (a reused copy or an ensemble's average cut short is deleted instead), or a
  ``--rerun`` superseded them: an older FINISHED run then carries
  ``ean.superseded_by`` (the newer run's id) and stays FINISHED. A report uses the newest FINISHED run of
  each (row, seed) that is not superseded, else the newest; the driver's report only runs of the trial keys it
  planned.
- The experiment carries the study's lease while a driver runs it: tags ``ean.lease.owner`` (a random id,
  empty when released), ``ean.lease.host``, ``ean.lease.pid``, ``ean.lease.since``, ``ean.lease.heartbeat``
  (Unix seconds, renewed every few seconds) and ``ean.lease.command``.
  On a tracking server the lease's mutex is an experiment named ``ean-lease/<experiment id>`` (tags
  ``ean.lease.owner``, ``ean.lease.host``, ``ean.lease.pid``), renamed ``...released-<id>`` and deleted when freed.
- While a driver trains a trial key it claims it store-wide (``runners.claims``): on a tracking server with an
  experiment named ``ean-claim/<trial key>`` (the lease's tags, and ``ean.claim.study``, ``ean.claim.experiment``:
  the claiming study and its experiment), freed like the lease's mutex; on a sqlite store with a file's flock.
- A trial run's data are its run inputs (``MlflowClient.log_inputs``), metadata only, nothing uploaded: one
  dataset per split it reads, named ``<dataset>/<split>`` (``dataset_input_name``: ``synthetic/train``,
  ``synthetic/val``), its digest the trial's ``ean.data_fingerprint`` (``sha256:<16 hex>``), its source the
  data root (source type ``local``), and the input tag ``mlflow.data.context`` = ``training`` or
  ``validation`` (``evaluation`` for the validation split of an evaluation row or an ensemble).
- Final metrics (one value each): ``top1``, ``top5`` (percent, 0-100), ``test_loss`` (mean NLL of the
  view-averaged probabilities) and ``test_videos`` (the videos it scored: bad files are skipped) of the final
  evaluation under the row's protocol, ``params`` (count of trainable
  parameters), ``flops`` (multiply-accumulates of one clip). Per-epoch metrics (step = epoch):
  ``train_loss``, ``train_top1``, ``val_top1``, ``val_top5``, ``lr``, and how the epoch ran: ``val_loss``,
  ``clips_per_s``, ``peak_memory_mb``, ``bad_files``, ``epoch_time_s`` (wall time of the epoch's training
  pass, seconds).
- Params: the flattened resolved config (``model.block`` = ``eab``, ``data.dataset`` = ...).
- Artifacts: ``config.yaml`` (the resolved config) and ``scores/val_scores.npz`` with arrays ``scores``
  (N x K float32 softmax scores), ``labels`` (N int), ``video_index`` (N int: rows with the same index
  are clips/crops of one video) and ``class_names`` (K str).
"""

from __future__ import annotations

import os

#: The tracking store when neither ``--mlflow-uri`` nor ``$MLFLOW_TRACKING_URI`` names one.
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"

# -- experiment ------------------------------------------------------------------------------------
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

# -- MLflow's own tags (``mlflow.utils.mlflow_tags``; this layer does not import mlflow, so the names are
# spelled here and tests/runners/test_mlflow_conventions.py checks each against MLflow's constant) --
TAG_PARENT_RUN_ID = "mlflow.parentRunId"  # MLFLOW_PARENT_RUN_ID
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"  # MLFLOW_GIT_COMMIT
MLFLOW_SOURCE_NAME = "mlflow.source.name"  # MLFLOW_SOURCE_NAME
MLFLOW_SOURCE_TYPE = "mlflow.source.type"  # MLFLOW_SOURCE_TYPE
MLFLOW_USER = "mlflow.user"  # MLFLOW_USER
#: The run's description, Markdown, shown on its page in the UI.
MLFLOW_RUN_NOTE = "mlflow.note.content"  # MLFLOW_RUN_NOTE
#: The input tag of a run's dataset: the role the data play for the run.
MLFLOW_DATASET_CONTEXT = "mlflow.data.context"  # MLFLOW_DATASET_CONTEXT
#: ``mlflow.source.type`` of a run started from a local command (``SourceType.to_string(SourceType.LOCAL)``).
SOURCE_TYPE_LOCAL = "LOCAL"
#: Every system tag a run of the runner is born with (``runners.tracking.system_tags`` gives their values).
SYSTEM_TAGS = (MLFLOW_GIT_COMMIT, MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE, MLFLOW_USER)
#: The longest tag value MLflow stores whole (``mlflow.utils.validation.MAX_TAG_VAL_LENGTH``).
MAX_TAG_VALUE = 8000

# -- dataset inputs ------------------------------------------------------------------------------------
SPLIT_TRAIN = "train"
SPLIT_VAL = "val"
CONTEXT_TRAINING = "training"
CONTEXT_VALIDATION = "validation"
CONTEXT_EVALUATION = "evaluation"

# -- tags --------------------------------------------------------------------------------------------
TAG_KIND = "ean.kind"
KIND_STUDY = "study"
KIND_TRIAL = "trial"
TAG_STUDY = "ean.study"
TAG_STUDY_HASH = "ean.study_hash"
TAG_ROW = "ean.row"
TAG_ROW_LABEL = "ean.row_label"
TAG_SEED = "ean.seed"
TAG_TRIAL_KEY = "ean.trial_key"
TAG_GIT_COMMIT = "ean.git_commit"
TAG_CODE_VERSION = "ean.code_version"
#: ``sha256:<16 hex>`` of the sources that computed the result (``runners.code_digest``): ``ean``'s and plugins'.
TAG_CODE_DIGEST = "ean.code_digest"
TAG_DATA_FINGERPRINT = "ean.data_fingerprint"
TAG_DATASET = "ean.dataset"
#: The dataset column of a study that compares ``datasets`` (a registry name; what the table groups the run under,
#: also when a profile replaces the data); absent in a study of one dataset.
TAG_COLUMN = "ean.column"
TAG_PROTOCOL = "ean.protocol"
TAG_ERROR = "ean.error"
#: On a trial run that reuses another study's FINISHED run of the same trial key: its run id and run name.
TAG_REUSED_FROM = "ean.reused_from"
TAG_REUSED_FROM_NAME = "ean.reused_from_name"
TAG_CHECKPOINT = "ean.checkpoint"
#: On a FINISHED trial run that a --rerun replaced: the id of the newer FINISHED run of its trial key (the
#: old run stays FINISHED; reports, ensembles and reuse leave it out).
TAG_SUPERSEDED_BY = "ean.superseded_by"
#: On an ensemble run: its members' run ids (comma-separated).
TAG_ENSEMBLE_OF = "ean.ensemble_of"
#: On a study (parent) run: the profile it ran with and its command line.
TAG_PROFILE = "ean.profile"
#: On a study (parent) run: the folder its invocation writes its report to (``outputs/reports/table8-smoke``).
TAG_REPORT_FOLDER = "ean.report_folder"
TAG_COMMAND = "ean.command"
TAG_WORKDIR = "ean.workdir"
#: On a FINISHED trial run: the Ray node id of the process that computed its result (DDP: rank 0's).
TAG_RAY_NODE = "ean.ray_node"
#: On an evaluation row's run: the trial key of the training whose checkpoint it evaluates (another protocol).
TAG_EVALUATES = "ean.evaluates"
#: On an evaluation row's run: the checkpoint it evaluated (its training run's ``ean.checkpoint`` then); once the
#: training is trained again (another checkpoint), the evaluation is run again.
TAG_EVALUATED_CHECKPOINT = "ean.evaluated_checkpoint"
#: On a training's run that resumed from the checkpoint another study left of its key (``runners.scheduler.
#: left_elsewhere``): that checkpoint, whose epochs this run did not train.
TAG_INHERITED_CHECKPOINT = "ean.inherited_checkpoint"
#: On a trial run: the driver's journal entry that created it (``runners.journal``), so a replay finds it.
TAG_OPENED_BY = "ean.opened_by"

#: Experiment tags of the study's lease (``runners.lease``): one driver per study at a time.
LEASE_OWNER = "ean.lease.owner"
LEASE_HOST = "ean.lease.host"
LEASE_PID = "ean.lease.pid"
LEASE_SINCE = "ean.lease.since"
LEASE_HEARTBEAT = "ean.lease.heartbeat"
LEASE_COMMAND = "ean.lease.command"
#: Names of the lock experiments: a study's lease on a tracking server, and the claim of a trial key.
LEASE_LOCK_PREFIX = "ean-lease/"
CLAIM_LOCK_PREFIX = "ean-claim/"
CLAIM_STUDY = "ean.claim.study"
CLAIM_EXPERIMENT = "ean.claim.experiment"

#: Experiment tag prefix of an unfinished ``--rerun`` (``runners.tracking.rerun_tag``): ``ean.rerun.<digest of the
#: code and the trial keys it planned>`` = when it began (Unix ms). Run again (the printed resume command, after a
#: stop, a failure or a dead driver), it keeps the trials that finished since then; emptied once every trial it
#: planned has finished.
RERUN_PREFIX = "ean.rerun."
ARTIFACT_PER_CLASS = "per_class_top1.json"

# -- run status (MLflow's RunStatus names) ------------------------------------------------------------
STATUS_FINISHED = "FINISHED"
STATUS_FAILED = "FAILED"
STATUS_RUNNING = "RUNNING"
STATUS_KILLED = "KILLED"

# -- metrics -----------------------------------------------------------------------------------------
METRIC_TOP1 = "top1"
METRIC_TOP5 = "top5"
#: The final evaluation's loss, under the row's protocol (the loss of ``top1``'s evaluation). Not ``val_loss``:
#: that per-epoch metric is the training-time validation's, and a final value logged under its name would be a
#: point at step 0 of its curve, while MLflow's latest value (the runs table's) stays the last epoch's.
METRIC_TEST_LOSS = "test_loss"
#: How many videos the final evaluation scored (top1's denominator): a bad file is skipped, not scored as wrong.
METRIC_TEST_VIDEOS = "test_videos"
METRIC_PARAMS = "params"
METRIC_FLOPS = "flops"
#: Logged once at the end of a trial (``params`` and ``flops`` may be logged at its start).
FINAL_METRICS = (METRIC_TOP1, METRIC_TOP5, METRIC_TEST_LOSS, METRIC_TEST_VIDEOS, METRIC_PARAMS, METRIC_FLOPS)
#: Logged once per epoch with ``step`` = the epoch.
EPOCH_METRICS = ("train_loss", "train_top1", "val_top1", "val_top5", "lr")
#: The wall time of an epoch's training pass, in seconds, logged per epoch (``ean.train.fit``'s history holds it).
METRIC_EPOCH_TIME = "epoch_time_s"
#: Every per-epoch metric the runner logs: the above, and how the epoch ran.
EPOCH_LOGGED = (*EPOCH_METRICS, "val_loss", "clips_per_s", "peak_memory_mb", "bad_files", METRIC_EPOCH_TIME)
#: The metric every epoch logs: its steps are the epochs a run has in MLflow.
EPOCH_MARKER = "train_loss"

# -- params (the flattened resolved config) ---------------------------------------------------------------
#: A trial run's number of classes (chance is 100 / it).
PARAM_NUM_CLASSES = "model.num_classes"
#: A trial run's data root (the source of its dataset inputs).
PARAM_DATA_ROOT = "data.root"

# -- artifacts -----------------------------------------------------------------------------------------
ARTIFACT_CONFIG = "config.yaml"
#: On a study (parent) run: the spec file, the resolved plan and the folder of the report's files.
ARTIFACT_SPEC = "spec.yaml"
ARTIFACT_PLAN = "plan.json"
#: On the parent run: the study's estimated cost (``runners.estimate``), when every network's step time is known
#: on this machine (a ``--dry-run --estimate`` timed them): the printed table, and its totals as metrics.
ARTIFACT_ESTIMATE = "estimate.txt"
METRIC_ESTIMATE_DEVICE_HOURS = "estimate_device_hours"
METRIC_ESTIMATE_WALL_HOURS = "estimate_wall_hours"
ARTIFACT_REPORT = "report"
ARTIFACT_SCORES = "scores/val_scores.npz"
SCORES_ARRAYS = ("scores", "labels", "video_index", "class_names")


def run_name(study: str, row: str, seed: int, column: str = "") -> str:
    """The name of a trial run, e.g. ``"table8/only_soitr/seed0"``; in a study that compares datasets, with the
    dataset column: ``"table1/ean8f_rgb/something_v2/seed0"``."""
    return f"{study}/{row}/{column}/seed{seed}" if column else f"{study}/{row}/seed{seed}"


def dataset_input_name(dataset: str, split: str) -> str:
    """The name of a run's dataset input: the dataset's registry name and the split, e.g. ``"synthetic/train"``."""
    return f"{dataset}/{split}"


def trial_filter(study: str) -> str:
    """The ``search_runs`` filter string that selects the trial runs of a study."""
    return f"tags.`{TAG_KIND}` = '{KIND_TRIAL}' AND tags.`{TAG_STUDY}` = '{_quote(study)}'"


def study_filter(study: str) -> str:
    """The ``search_runs`` filter string that selects the study (parent) runs of a study."""
    return f"tags.`{TAG_KIND}` = '{KIND_STUDY}' AND tags.`{TAG_STUDY}` = '{_quote(study)}'"


def _quote(value: str) -> str:
    if "'" in value:
        raise ValueError(f"a study name cannot contain a quote: {value!r}")
    return value


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` if set (as MLflow's own tools honour it), else ``sqlite:///mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def is_lock_experiment(name: str) -> bool:
    """Whether an experiment is one of the runner's locks (a lease's mutex, a trial key's claim), not a study."""
    return name.startswith((LEASE_LOCK_PREFIX, CLAIM_LOCK_PREFIX))
