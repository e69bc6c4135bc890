"""The study spec: a YAML file that declares one paper table (rows x seeds) and how to run and print it.

A spec is data only (DESIGN.md, ``study.policy``): ``yaml.safe_load``, no ``_target_``, no resolver calls,
no Hydra settings. Example (``studies/table8.yaml``)::

    name: table8                      # lowercase identifier; also the MLflow experiment name
    title: "Table 8: Comparison of different spatial-temporal blocks."
    overrides: [model=ean8f_rgb, data=something_v1, trainer=paper]
    seeds: [0, 1, 2]
    protocol: {clips: 1, crops: 1}    # tagged on runs as "1x1" (clips x crops)
    columns: [rfs, multi_scale, params, flops, top1, top5]
    column_titles: {rfs: RFS, multi_scale: "Multi-scale?"}
    baseline: only_soitr
    rows:
      - id: only_soitr
        label: "Only SOI-Tr"
        overrides: [block=none]
        cells: {rfs: "-", multi_scale: "-"}
        paper: {params: 30.3, flops: 33.8, top1: 49.3, top5: 77.9}
    profiles:
      smoke: [data=synthetic, trainer=smoke]

A study may compare datasets side by side (the paper's Table 1: Something V1 and V2)::

    overrides: [trainer=paper]        # no data=...: each dataset column chooses its own
    datasets:                         # a trained row trains once per dataset; the accuracy columns repeat
      something_v1: {}                # per dataset (the first is the one the rows' top-level paper numbers are for)
      something_v2: {smoke: [data.seed=1, data.root=data/synthetic_seed1]}   # a profile's refinement here
    rows:
      - id: ean8f_rgb
        paper: {flops: 36, top1: 51.9, top5: 79.5, something_v2: {top1: 63.5, top5: 88.2}}

Columns named in ``MEASURED`` (``params``, ``flops``, ``top1``, ``top5``) are read from MLflow; every other
column is descriptive and each row gives its text in ``cells``. ``column_titles`` may also title the row
label column with the key ``label`` (default "Model"). ``paper`` holds the paper's reported values in the
units the paper prints: params in M, FLOPs in G (multiply-accumulates per clip), accuracies in percent.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from study.policy import dotted, find_problems

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")

#: Measured columns and their default titles; their values come from MLflow, not from the spec.
MEASURED: dict[str, str] = {"params": "Param", "flops": "FLOPs", "top1": "Top1 (%)", "top5": "Top5 (%)"}
#: The measured columns that do not depend on the dataset (the network's size and cost).
COST_COLUMNS = ("params", "flops")
#: The key in ``column_titles`` that titles the row label column.
LABEL_COLUMN = "label"
DEFAULT_LABEL_TITLE = "Model"

REQUIRED_KEYS = ("name", "title", "seeds", "protocol", "columns", "rows")
OPTIONAL_KEYS = (
    "description",
    "overrides",
    "column_titles",
    "baseline",
    "profiles",
    "paper_dataset",
    "paper_protocol",
    "datasets",
    "notes",
)
ROW_REQUIRED_KEYS = ("id", "label")
ROW_OPTIONAL_KEYS = (
    "overrides", "cells", "paper", "ensemble", "reference", "evaluate", "protocol", "profiles", "note",
)  # fmt: skip
#: A reference row's keys besides the measured columns: where the published result comes from.
REFERENCE_SOURCE = "source"
PROTOCOL_KEYS = ("clips", "crops")


class SpecError(ValueError):
    """A study spec is invalid; the message names the file, the row (if any), the bad value and valid keys."""


@dataclass(frozen=True)
class Protocol:
    """Evaluation protocol: clips per video x crops per clip.

    Attributes:
        clips: temporal clips sampled per video at test time.
        crops: spatial crops per clip at test time.
    """

    clips: int
    crops: int

    @property
    def tag(self) -> str:
        """The protocol as tagged on MLflow runs, e.g. ``"1x1"``."""
        return f"{self.clips}x{self.crops}"


@dataclass(frozen=True)
class Row:
    """One table row: a named set of overrides, its descriptive cells and the paper's values.

    Attributes:
        id: lowercase identifier, unique in the spec; tagged on runs as ``ean.row``.
        label: the row's name as printed.
        overrides: Hydra overrides of this row (applied after the spec's common overrides).
        cells: text of each descriptive column.
        paper: the paper's reported values by measured column (params in M, flops in G, accuracies in %).
        ensemble: ids of earlier rows whose per-video scores this row averages (the paper's "En" rows);
            such a row trains nothing and has no overrides.
        reference: a published result shown beside ours, trained by nobody here: its values by measured
            column (in the paper's units, like ``paper``); such a row has no overrides, ensemble or paper.
        source: where a reference row's result is published (required with ``reference``).
        evaluate: the id of an earlier trained row whose finished trainings this row evaluates again, under
            ``protocol`` (Table 4's "16x2": the 16-frame network tested with 2 clips); such a row trains
            nothing and has no overrides. Adding one later evaluates the checkpoints, never retrains.
        protocol: the protocol of an ``evaluate`` row (the others use the spec's).
        paper_on: in a study with several ``datasets``, the paper's (or a reference row's published) values on
            each dataset after the first, by dataset: what a key naming the dataset in ``paper``/``reference``
            holds (``paper``/``reference`` themselves are for the first).
        profiles: the row's refinements of profiles (profile name -> overrides, applied after the row's own):
            what a profile must change for this row only (Table 7's Faster R-CNN row runs a random detector in
            the smoke profile, whose data the COCO weights know nothing of).
        note: a remark on the row the table prints among its notes (``Label: note``), e.g. where the paper's
            number comes from another setting than ours.
    """

    id: str
    label: str
    overrides: tuple[str, ...] = ()
    cells: dict[str, str] = field(default_factory=dict)
    paper: dict[str, float] = field(default_factory=dict)
    ensemble: tuple[str, ...] = ()
    reference: dict[str, float] = field(default_factory=dict)
    source: str = ""
    evaluate: str = ""
    protocol: Protocol | None = None
    paper_on: dict[str, dict[str, float]] = field(default_factory=dict)
    profiles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    note: str = ""

    @property
    def trains(self) -> bool:
        """Whether the row is trained here (not an ensemble, an evaluation of another row or a reference)."""
        return not self.ensemble and not self.reference and not self.evaluate


@dataclass(frozen=True)
class StudySpec:
    """A validated study spec. Build it with ``load_spec`` or ``parse_spec``.

    Attributes:
        name: lowercase identifier; the MLflow experiment name.
        title: the table's title as printed (may start with "Table N:").
        description: free text.
        overrides: Hydra overrides common to all rows.
        seeds: the seeds every row runs with.
        protocol: the evaluation protocol.
        columns: the table's columns in order (measured and descriptive).
        column_titles: titles of columns (and of the label column under ``"label"``) that override defaults.
        baseline: the id of the row differences are taken against, or ``None``.
        rows: the rows in table order.
        profiles: named override sets (e.g. ``smoke``), applied on request after the spec's overrides and before
            the row's (``study.profiles``: the shared ones, refined here).
        paper_dataset: the dataset (registry name) the rows' ``paper`` numbers were published for: the
            ``paper_dataset`` key, else the dataset the spec's overrides choose (``data=...``), else None. The
            table compares ours with the paper's only for runs on that dataset and protocol.
        paper_protocol: the protocol (clips x crops, ``"1x1"``) of the paper's numbers: the ``paper_protocol``
            key, else the spec's.
        datasets: the dataset columns of a study that compares datasets side by side, in order, each with its
            refinements of profiles (profile name -> overrides, applied after the profile's): every trained row
            trains once per dataset (``data=NAME`` after the spec's overrides). Empty: the spec's overrides
            choose the one dataset.
        notes: remarks the table prints among its notes (e.g. how the paper counts a column).
        source: the file the spec was read from (for messages); not part of the spec's hash.
    """

    name: str
    title: str
    seeds: tuple[int, ...]
    protocol: Protocol
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    description: str = ""
    overrides: tuple[str, ...] = ()
    column_titles: dict[str, str] = field(default_factory=dict)
    baseline: str | None = None
    profiles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    paper_dataset: str | None = None
    paper_protocol: str = ""
    datasets: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    source: str = "<spec>"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def row_ids(self) -> tuple[str, ...]:
        """Row ids in table order."""
        return tuple(r.id for r in self.rows)

    @property
    def measured_columns(self) -> tuple[str, ...]:
        """The columns whose values come from MLflow, in table order."""
        return tuple(c for c in self.columns if c in MEASURED)

    @property
    def descriptive_columns(self) -> tuple[str, ...]:
        """The columns whose values come from each row's ``cells``, in table order."""
        return tuple(c for c in self.columns if c not in MEASURED)

    def row(self, row_id: str) -> Row:
        """Returns the row with id ``row_id``; raises ``KeyError`` naming the valid ids."""
        for r in self.rows:
            if r.id == row_id:
                return r
        raise KeyError(f"no row {row_id!r} in study {self.name!r}; rows: {', '.join(self.row_ids)}")

    @property
    def columns_of_data(self) -> tuple[str, ...]:
        """The dataset columns (``datasets``) in order; ``("",)`` for a study of one dataset."""
        return tuple(self.datasets) or ("",)

    def on_dataset(self, dataset: str) -> StudySpec:
        """The study as it runs and prints on one of its ``datasets``: the spec's overrides then ``data=NAME``,
        the dataset's profile refinements after the spec's, the rows' paper and reference values on it (costs,
        params and FLOPs, do not depend on the dataset), and no ``datasets``. ``""``: the spec itself.

        Raises:
            KeyError: ``dataset`` is not one of the spec's datasets (the message names them).
        """
        if not dataset:
            return self
        if dataset not in self.datasets:
            raise KeyError(f"no dataset {dataset!r} in study {self.name!r}; datasets: {', '.join(self.datasets)}")
        names = {*self.profiles, *self.datasets[dataset]}
        profiles = {name: (*self.profiles.get(name, ()), *self.refinement(dataset, name)) for name in names}
        first = dataset == next(iter(self.datasets))
        return dataclasses.replace(
            self,
            overrides=(*self.overrides, f"data={dataset}"),
            profiles=profiles,
            rows=tuple(row if first else _row_on(row, dataset) for row in self.rows),
            paper_dataset=dataset,
            datasets={},
        )

    def refinement(self, dataset: str, profile: str | None) -> tuple[str, ...]:
        """The overrides dataset column ``dataset`` adds to profile ``profile`` (after the spec's own; none for
        ``""``, a study of one dataset, or no profile)."""
        if not dataset or not profile:
            return ()
        return tuple(self.datasets.get(dataset, {}).get(profile, ()))

    def title_of(self, column: str) -> str:
        """The printed title of a column (or of the label column for ``"label"``)."""
        if column in self.column_titles:
            return self.column_titles[column]
        if column == LABEL_COLUMN:
            return DEFAULT_LABEL_TITLE
        return MEASURED.get(column, column)


def spec_hash(spec: StudySpec) -> str:
    """A stable 12-hex-digit hash of the spec's content (key order and file location do not matter).

    The runner tags study runs with it as ``ean.study_hash`` so a report can tell which spec produced them.
    """
    canonical = json.dumps(spec.raw, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _row_on(row: Row, dataset: str) -> Row:
    """``row`` with its paper (or published) values on ``dataset``: the accuracies given for it, the costs of the
    first dataset."""
    costs = {k: v for k, v in (row.reference or row.paper).items() if k in COST_COLUMNS}
    values = {**costs, **row.paper_on.get(dataset, {})}
    if row.reference:
        return dataclasses.replace(row, reference=values, paper_on={})
    return dataclasses.replace(row, paper=values, paper_on={})


def load_spec(path: str | Path) -> StudySpec:
    """Reads and validates a study spec file.

    Args:
        path: the YAML file.

    Returns:
        The validated spec.

    Raises:
        SpecError: the file is missing, not YAML, or not a valid spec (the message says where and why).
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SpecError(f"{path}: cannot read the study spec: {e}") from None
    except UnicodeDecodeError as e:
        raise SpecError(
            f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); a study spec is a UTF-8 YAML file"
        ) from None
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from None
    return parse_spec(data, source=str(path))


def parse_spec(data: Any, source: str = "<spec>") -> StudySpec:
    """Validates a spec already loaded from YAML (a plain dict) and builds a ``StudySpec``.

    Args:
        data: the loaded YAML document.
        source: where it came from, for error messages.

    Raises:
        SpecError: on unknown or missing keys, wrong types, duplicate row ids, an unknown baseline,
            or a forbidden string (``_target_``, ``${oc.env...}``, ``${env:...}``).
    """
    ctx = _Ctx(source)
    _check_forbidden(data, ctx)
    _check_keys(data, REQUIRED_KEYS, OPTIONAL_KEYS, ctx, what="study spec")
    columns = _str_list(data["columns"], ctx, "columns", ident=True, unique=True, nonempty=True)
    datasets = _datasets(data, ctx)
    rows = _rows(data["rows"], columns, list(datasets)[1:], ctx)
    protocol = _protocol(data["protocol"], ctx)
    for row in (r for r in rows if r.evaluate and r.protocol == protocol):
        ctx.fail(
            f"row {row.id!r} evaluates {row.evaluate!r} under the spec's own protocol {protocol.tag}, which that "
            "row's training already tests: give the row another protocol, or drop it"
        )
    baseline = data.get("baseline")
    measured_rows = [r.id for r in rows if not r.reference]
    if baseline is not None and baseline not in measured_rows:
        ctx.fail(
            f"baseline {baseline!r} is not a row id (of a row measured here). Valid row ids: {', '.join(measured_rows)}"
        )
    return StudySpec(
        name=_ident(data["name"], ctx, "name"),
        title=_string(data["title"], ctx, "title"),
        description=_string(data.get("description", ""), ctx, "description"),
        overrides=tuple(_str_list(data.get("overrides", []), ctx, "overrides")),
        seeds=_seeds(data["seeds"], ctx),
        protocol=protocol,
        columns=tuple(columns),
        column_titles=_column_titles(data.get("column_titles", {}), columns, ctx),
        baseline=baseline,
        rows=tuple(rows),
        profiles=_profiles(data.get("profiles", {}), ctx),
        paper_dataset=next(iter(datasets), None) or _paper_dataset(data, ctx),
        paper_protocol=_paper_protocol(data, ctx),
        datasets=datasets,
        notes=tuple(n.strip() for n in _str_list(data.get("notes", []), ctx, "notes")),
        source=source,
        raw=copy.deepcopy(data),
    )


# -- validation helpers --------------------------------------------------------------------------------


class _Ctx:
    """Where a value sits (file and row), for error messages."""

    def __init__(self, source: str, row: str | None = None):
        self.source, self.row = source, row

    def at_row(self, row: str) -> _Ctx:
        return _Ctx(self.source, row)

    def fail(self, message: str) -> None:
        where = f"{self.source}: row {self.row!r}: " if self.row else f"{self.source}: "
        raise SpecError(where + message)


def _check_forbidden(data: Any, ctx: _Ctx) -> None:
    """The data-only policy (``study.policy.find_problems``): override lists by the override rule, every other
    string and key by the text rule; the first problem fails, naming its row."""
    found = find_problems(data, is_override=_is_override)
    if found:
        where, problem = found[0]
        row = _row_at(data, where)
        (ctx.at_row(row) if row else ctx).fail(f"{dotted(where)}: {problem}; a study spec is data only")


def _is_override(where: tuple) -> bool:
    """Whether a spec's string at ``where`` is a Hydra override: the spec's, a profile's or a row's."""
    return (
        (len(where) == 2 and where[0] == "overrides")
        or (len(where) == 3 and where[0] == "profiles")
        or (len(where) == 4 and where[0] == "rows" and where[2] == "overrides")
        or (len(where) == 4 and where[0] == "datasets")
        or (len(where) == 5 and where[0] == "rows" and where[2] == "profiles")
    )


def _row_at(data: Any, where: tuple) -> str | None:
    if len(where) > 1 and where[0] == "rows" and isinstance(where[1], int):
        row = data["rows"][where[1]]
        if isinstance(row, dict) and isinstance(row.get("id"), str):
            return row["id"]
        return f"#{where[1] + 1}"
    return None


def _check_keys(data: Any, required: tuple, optional: tuple, ctx: _Ctx, what: str) -> None:
    valid = ", ".join(required + optional)
    if not isinstance(data, dict):
        ctx.fail(f"the {what} must be a mapping, got {type(data).__name__}. Valid keys: {valid}")
    for key in data:
        if key not in required and key not in optional:
            ctx.fail(f"unknown key {key!r} in the {what}. Valid keys: {valid}")
    for key in required:
        if key not in data:
            ctx.fail(f"missing key {key!r} in the {what}. Valid keys: {valid} (required: {', '.join(required)})")


def _string(value: Any, ctx: _Ctx, key: str) -> str:
    if not isinstance(value, str):
        hint = " (quote it: YAML reads yes/no/on/off as booleans)" if isinstance(value, bool) else ""
        ctx.fail(f"{key} must be a string, got {type(value).__name__} {value!r}{hint}")
    return value


def _ident(value: Any, ctx: _Ctx, key: str) -> str:
    if not isinstance(value, str) or not _IDENT.match(value):
        ctx.fail(f"{key} must be a lowercase identifier (letters, digits, '_'), got {value!r}")
    return value


def _str_list(value: Any, ctx: _Ctx, key: str, ident=False, unique=False, nonempty=False) -> list[str]:
    if not isinstance(value, list):
        ctx.fail(f"{key} must be a list of strings, got {type(value).__name__} {value!r}")
    if nonempty and not value:
        ctx.fail(f"{key} must not be empty")
    items = [(_ident if ident else _string)(v, ctx, f"{key} entry") for v in value]
    if unique and len(set(items)) != len(items):
        dup = sorted({v for v in items if items.count(v) > 1})
        ctx.fail(f"{key} has duplicates: {', '.join(dup)}")
    return items


def _seeds(value: Any, ctx: _Ctx) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        ctx.fail(f"seeds must be a non-empty list of integers, got {value!r}")
    for s in value:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            ctx.fail(f"seeds must be non-negative integers, got {s!r}")
    if len(set(value)) != len(value):
        ctx.fail(f"seeds has duplicates: {value!r}")
    return tuple(value)


def _protocol(value: Any, ctx: _Ctx) -> Protocol:
    _check_keys(value, PROTOCOL_KEYS, (), ctx, what="protocol")
    for key in PROTOCOL_KEYS:
        v = value[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            ctx.fail(f"protocol.{key} must be a positive integer, got {v!r}")
    return Protocol(clips=value["clips"], crops=value["crops"])


def _column_titles(value: Any, columns: list[str], ctx: _Ctx) -> dict[str, str]:
    if not isinstance(value, dict):
        ctx.fail(f"column_titles must be a mapping of column to title, got {value!r}")
    valid = [LABEL_COLUMN, *columns]
    for k, v in value.items():
        if k not in valid:
            ctx.fail(f"column_titles names unknown column {k!r}. Valid keys: {', '.join(valid)}")
        _string(v, ctx, f"column_titles.{k}")
    return dict(value)


def _paper_dataset(data: dict, ctx: _Ctx) -> str | None:
    """The explicit ``paper_dataset``, else the last ``data=NAME`` of the spec's overrides."""
    if "paper_dataset" in data:
        return _ident(data["paper_dataset"], ctx, "paper_dataset")
    chosen = [o.split("=", 1)[1] for o in data.get("overrides", []) if isinstance(o, str) and o.startswith("data=")]
    return chosen[-1] if chosen else None


def _datasets(data: dict, ctx: _Ctx) -> dict[str, dict[str, tuple[str, ...]]]:
    """The ``datasets`` of a study that compares datasets side by side: name -> {profile: overrides}."""
    value = data.get("datasets")
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) < 2:
        ctx.fail(
            "datasets must be a mapping of at least two dataset names (each to its profile refinements, {} for "
            f"none): a row trains once per dataset; got {value!r}"
        )
    chosen = [o for o in data.get("overrides", []) if isinstance(o, str) and o.startswith("data=")]
    clashing = [k for k in ("paper_dataset",) if k in data]
    if chosen or clashing:
        ctx.fail(
            f"with datasets, each dataset column chooses its data (data=NAME) and the first is the paper's: "
            f"remove {', '.join(chosen + clashing)}"
        )
    out = {}
    for name, refined in value.items():
        _ident(name, ctx, "a name in datasets")
        if not isinstance(refined, dict):
            ctx.fail(f"datasets.{name} must map profile names to overrides ({{}} for none), got {refined!r}")
        out[name] = {p: tuple(_str_list(o, ctx, f"datasets.{name}.{p}")) for p, o in refined.items()}
    return out


def _paper_protocol(data: dict, ctx: _Ctx) -> str:
    """The explicit ``paper_protocol`` (``"CxK"``), else the spec's protocol."""
    if "paper_protocol" not in data:
        return _protocol(data["protocol"], ctx).tag
    value = data["paper_protocol"]
    if not isinstance(value, str) or not re.fullmatch(r"[1-9][0-9]*x[1-9][0-9]*", value):
        ctx.fail(f"paper_protocol must be 'CLIPSxCROPS' such as '1x1' or '10x3', got {value!r}")
    return value


def _profiles(value: Any, ctx: _Ctx) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        ctx.fail(f"profiles must be a mapping of name to a list of overrides, got {value!r}")
    out = {}
    for name, overrides in value.items():
        _ident(name, ctx, "profile name")
        out[name] = tuple(_str_list(overrides, ctx, f"profiles.{name}"))
    return out


def _rows(value: Any, columns: list[str], others: list[str], ctx: _Ctx) -> list[Row]:
    """The rows; ``others``: the dataset columns after the first, whose values a row's paper or reference may
    give under their name."""
    if not isinstance(value, list) or not value:
        ctx.fail(f"rows must be a non-empty list of mappings, got {value!r}")
    rows: list[Row] = []
    for i, data in enumerate(value):
        row_name = data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else f"#{i + 1}"
        rctx = ctx.at_row(row_name)
        _check_keys(data, ROW_REQUIRED_KEYS, ROW_OPTIONAL_KEYS, rctx, what="row")
        row = Row(
            id=_ident(data["id"], rctx, "id"),
            label=_string(data["label"], rctx, "label"),
            overrides=tuple(_str_list(data.get("overrides", []), rctx, "overrides")),
            cells=_cells(data.get("cells", {}), columns, rctx),
            paper=_paper(_first(data.get("paper", {}), others), rctx, others=others),
            ensemble=tuple(_str_list(data.get("ensemble", []), rctx, "ensemble", ident=True, unique=True)),
            paper_on=_paper_on(data, others, rctx),
            profiles=_profiles(data.get("profiles", {}), rctx),
            note=_string(data.get("note", ""), rctx, "note").strip(),
            **_reference(data, others, rctx),
            **_evaluation(data, rows, rctx),
        )
        if row.id in [r.id for r in rows]:
            rctx.fail(f"duplicate row id {row.id!r}; row ids must be unique")
        _check_ensemble(row, rows, rctx)
        rows.append(row)
    return rows


def _check_ensemble(row: Row, earlier: list[Row], ctx: _Ctx) -> None:
    if not row.ensemble:
        return
    if row.overrides or row.profiles:
        ctx.fail("an ensemble row has no overrides or profiles: it averages the scores of its member rows")
    trainable = [r.id for r in earlier if r.trains]
    unknown = [m for m in row.ensemble if m not in trainable]
    if unknown or len(row.ensemble) < 2:
        ctx.fail(
            f"ensemble must name at least two earlier trained rows; {unknown or row.ensemble} "
            f"not valid. Valid: {', '.join(trainable) or '(none)'}"
        )


def _cells(value: Any, columns: list[str], ctx: _Ctx) -> dict[str, str]:
    descriptive = [c for c in columns if c not in MEASURED]
    if not isinstance(value, dict):
        ctx.fail(f"cells must be a mapping of column to text, got {value!r}")
    for k, v in value.items():
        if k not in descriptive:
            valid = ", ".join(descriptive) or "(none)"
            ctx.fail(
                f"cells names {k!r}, which is not a descriptive column. Valid keys: {valid} "
                f"(measured columns {', '.join(MEASURED)} come from MLflow)"
            )
        _string(v, ctx, f"cells.{k}")
    missing = [c for c in descriptive if c not in value]
    if missing:
        ctx.fail(
            f"cells lacks the descriptive column(s) {', '.join(missing)} (columns not in {', '.join(MEASURED)} "
            "are descriptive and every row gives their text; use '-' for none)"
        )
    return dict(value)


def _evaluation(data: dict, earlier: list[Row], ctx: _Ctx) -> dict[str, Any]:
    """``evaluate`` and ``protocol`` of a row that evaluates an earlier trained row under another protocol."""
    if "evaluate" not in data and "protocol" not in data:
        return {}
    if "evaluate" not in data or "protocol" not in data:
        ctx.fail("a row evaluates an earlier trained row under another protocol: give both 'evaluate' and 'protocol'")
    trained = [r.id for r in earlier if r.trains]
    if data["evaluate"] not in trained:
        ctx.fail(
            f"evaluate names {data['evaluate']!r}, not an earlier trained row. Valid: {', '.join(trained) or '(none)'}"
        )
    clashing = [k for k in ("overrides", "ensemble", "reference", "profiles") if k in data]
    if clashing:
        ctx.fail(f"an evaluation row evaluates the trainings of its row: it takes no {', '.join(clashing)}")
    return {"evaluate": data["evaluate"], "protocol": _protocol(data["protocol"], ctx)}


def _first(value: Any, others: list[str]) -> Any:
    """A paper or reference mapping without the values of the other datasets (its keys naming them)."""
    return {k: v for k, v in value.items() if k not in others} if isinstance(value, dict) else value


def _paper_on(data: dict, others: list[str], ctx: _Ctx) -> dict[str, dict[str, float]]:
    """The values of a row's ``paper`` (or ``reference``) on the datasets after the first, by dataset."""
    given = data.get("reference", data.get("paper", {}))
    if not isinstance(given, dict):
        return {}
    what = "reference" if "reference" in data else "paper"
    return {d: _paper(given[d], ctx, f"{what}.{d}") for d in others if d in given}


def _reference(data: dict, others: list[str], ctx: _Ctx) -> dict[str, Any]:
    """``reference`` and ``source`` of a row: published values by measured column and where they are from."""
    if "reference" not in data:
        return {}
    value = data["reference"]
    if not isinstance(value, dict) or not isinstance(value.get(REFERENCE_SOURCE), str) or not value["source"]:
        ctx.fail(
            f"reference must be a mapping of measured column to the published number, with '{REFERENCE_SOURCE}' "
            f"saying where it is published, got {value!r}"
        )
    clashing = [k for k in ("overrides", "ensemble", "paper", "profiles") if k in data]
    if clashing:
        ctx.fail(f"a reference row shows a published result and trains nothing: it takes no {', '.join(clashing)}")
    numbers = {k: v for k, v in _first(value, others).items() if k != REFERENCE_SOURCE}
    return {"reference": _paper(numbers, ctx, "reference", others), "source": value[REFERENCE_SOURCE]}


def _paper(value: Any, ctx: _Ctx, what: str = "paper", others: list[str] = ()) -> dict[str, float]:
    if not isinstance(value, dict):
        ctx.fail(f"{what} must be a mapping of measured column to number, got {value!r}")
    for k, v in value.items():
        if k not in MEASURED:
            extra = f", {REFERENCE_SOURCE}" if what == "reference" else ""
            extra += "".join(f", {d} (its values on that dataset)" for d in others)
            ctx.fail(f"{what} names unknown measured column {k!r}. Valid keys: {', '.join(MEASURED)}{extra}")
        if isinstance(v, bool) or not isinstance(v, int | float):
            ctx.fail(f"{what}.{k} must be a number, got {v!r}")
    return {k: float(v) for k, v in value.items()}
