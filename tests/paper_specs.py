"""The trained rows of the paper's study specs (``studies/table*.yaml``), composed as the runner composes them.

The specs are the one home of the paper's rows: each row's overrides say which network it is, and its
``paper`` mapping the Params (M) and FLOPs (G multiply-accumulates per clip) the paper reports. Tests read
both from here. Each row is composed with the spec's own (paper) settings: no profile, no command-line
overrides, the spec's first seed (``runners.plan.row_overrides`` and ``runners.compose.compose_config``, as
``runners.plan.build_plan`` does). Rows that train nothing (ensembles, published references: ``Row.trains``)
have no network of their own: they are left out.

Composing every row with Hydra takes a few seconds, so it happens once per session (``paper_rows`` is cached).
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ean.models import resolve_model_config
from ean.profile import without_weights
from runners.compose import compose_config, hydra_context
from runners.plan import row_overrides
from study.spec import Row, load_spec

STUDIES_DIR = Path(__file__).resolve().parents[1] / "studies"


def _table_number(path: Path) -> int:
    return int(path.stem.removeprefix("table"))


#: The paper's table specs in the paper's order (table1, table5, ..., table10).
PAPER_STUDIES = tuple(sorted(STUDIES_DIR.glob("table*.yaml"), key=_table_number))


@dataclass(frozen=True)
class SpecRow:
    """One trained row of a paper study, composed with the spec's own settings.

    Attributes:
        study: the study's name (``table8``).
        row: the spec row (its ``paper`` mapping holds the paper's values).
        config: the resolved trial config as the runner composes it (plain dict; do not change it).
    """

    study: str
    row: Row
    config: dict[str, Any]

    @property
    def name(self) -> str:
        """``"<study>/<row id>"``, e.g. ``table8/eab``: the test id and the key of per-row settings."""
        return f"{self.study}/{self.row.id}"

    @property
    def model(self) -> dict[str, Any]:
        """The row's model config with random weights (a new dict), as the runner counts Params and FLOPs
        (``runners.plan.count_trials``): no weights file is read."""
        return without_weights(self.config["model"])

    @property
    def model_key(self) -> str:
        """The resolved model config as text: two rows with the same key build the same model config."""
        return json.dumps(resolve_model_config(self.model), sort_keys=True)

    @property
    def paper_params(self) -> float | None:
        """The paper's Params in millions, or None where the paper's table gives none."""
        return self.row.paper.get("params")

    @property
    def paper_flops(self) -> float | None:
        """The paper's FLOPs in G (multiply-accumulates per clip), or None where the paper's table gives none."""
        return self.row.paper.get("flops")


@functools.cache
def _composed() -> tuple[SpecRow, ...]:
    rows = []
    with hydra_context():
        for path in PAPER_STUDIES:
            spec = load_spec(path)
            for row in spec.rows:
                if not row.trains:
                    continue
                config = compose_config(row_overrides(spec, row, [], [], spec.seeds[0]))
                rows.append(SpecRow(spec.name, row, config))
    return tuple(rows)


def paper_rows() -> list[SpecRow]:
    """Every trained row of the paper's studies, in table order (composed once per session; copies)."""
    return [SpecRow(r.study, r.row, copy.deepcopy(r.config)) for r in _composed()]


def distinct_model_rows() -> list[SpecRow]:
    """The first row of each distinct model config (many tables share the EAN 8F RGB row)."""
    seen, rows = set(), []
    for row in paper_rows():
        if row.model_key not in seen:
            seen.add(row.model_key)
            rows.append(row)
    return rows
