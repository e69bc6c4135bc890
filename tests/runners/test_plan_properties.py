"""Properties of a spec's expansion into trials (``build_plan``), over drawn specs: rows x seeds trials, one per
(row, seed); unique keys; the key of a (row, seed) is the same planned alone or among any rows and seeds, in
any order; and recomputing a trial's key from its config gives it again.

Hydra composes every trial (about 0.1 s each on a 2-core CPU): the examples are few and small, drawn from a
pool of rows that build distinct networks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ean.data.identity import data_fingerprint
from ean.trial import trial_key
from runners.plan import build_plan
from runners.validate import devices_of, train_config
from study.spec import load_spec
from tests.runners.conftest import tiny_spec

#: Rows that build distinct networks (``block=eab, fusion=identity`` would be ``incep_block``'s network).
POOL = {
    "none": ["block=none"],
    "eab": ["block=eab"],
    "s_block": ["block=s_block"],
    "l_block": ["block=l_block"],
    "incep_block": ["block=incep_block"],
    "eab_static": ["block=eab", "fusion=static"],
    "eab_shuffle": ["block=eab", "fusion=shuffle"],
}
SEEDS = range(5)

_alone: dict[tuple[str, int], str] = {}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("plan-properties")


def plan(workdir: Path, row_ids: list[str], seeds: list[int]) -> list:
    """``load_spec`` of a tiny spec with these rows (in this order) and seeds, then ``build_plan``."""
    rows = [{"id": r, "label": r, "overrides": POOL[r]} for r in row_ids]
    path = workdir / "study.yaml"
    path.write_text(yaml.safe_dump(tiny_spec(rows, seeds=seeds), sort_keys=False))
    spec = load_spec(path)
    return build_plan(spec, [], [], list(spec.seeds), workdir)


def alone(workdir: Path, row_id: str, seed: int) -> str:
    """The key of (row, seed) planned on its own: a spec of that one row and that one seed."""
    if (row_id, seed) not in _alone:
        [trial] = plan(workdir, [row_id], [seed])
        _alone[row_id, seed] = trial.key
    return _alone[row_id, seed]


rows_drawn = st.lists(st.sampled_from(sorted(POOL)), min_size=1, max_size=3, unique=True)
seeds_drawn = st.lists(st.sampled_from(SEEDS), min_size=1, max_size=3, unique=True)
#: Few examples, no deadline (Hydra is slow), no shrinking: drawn examples are already small (<= 3 rows x 3
#: seeds) and shrinking a failure would compose hundreds of plans (minutes) before reporting it.
PROPERTY = settings(
    max_examples=20,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(row_ids=rows_drawn, seeds=seeds_drawn)
def test_a_spec_expands_to_one_trial_per_row_and_seed_with_keys_of_their_own(workdir, row_ids, seeds):
    trials = plan(workdir, row_ids, seeds)
    assert len(trials) == len(row_ids) * len(seeds)
    assert sorted((t.row.id, t.seed) for t in trials) == sorted((r, s) for r in row_ids for s in seeds)
    assert len({t.key for t in trials}) == len(trials), "two (row, seed) share a key"
    for t in trials:
        # a subset (this row, this seed, alone) and any order of rows give the same key
        assert t.key == alone(workdir, t.row.id, t.seed), (t.row.id, t.seed)
        # recomputed from the trial's own config: the same key
        config = t.config
        assert trial_key(train_config(config), devices_of(config), data_fingerprint(config["data"])) == t.key


@PROPERTY
@given(row_ids=rows_drawn.filter(lambda ids: len(ids) > 1), seeds=seeds_drawn, data=st.data())
def test_keys_do_not_depend_on_row_order_or_on_the_other_seeds(workdir, row_ids, seeds, data):
    order = data.draw(st.permutations(row_ids), label="rows reordered")
    fewer = data.draw(st.lists(st.sampled_from(seeds), min_size=1, unique=True), label="seed subset")
    first = {(t.row.id, t.seed): t.key for t in plan(workdir, row_ids, seeds)}
    again = {(t.row.id, t.seed): t.key for t in plan(workdir, order, fewer)}
    assert again == {k: v for k, v in first.items() if k[1] in fewer}
