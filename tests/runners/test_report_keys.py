"""The keys a driver's table shows with ``--rows``: every row's, planned with the invocation's configuration."""

from __future__ import annotations

from runners.run import keyed_trials, parse_args, plan_study, select
from study.spec import load_spec
from tests.runners.conftest import cli_args, tiny_spec, write_yaml

ROWS = [
    {"id": "base", "label": "Baseline", "overrides": ["block=none", "regions=none"]},
    {"id": "eab", "label": "+EAB", "overrides": ["block=eab", "regions=none"]},
    {"id": "far", "label": "Far", "overrides": ["block=none", "regions=none", "model.pretrained=/nowhere/w.pth"]},
]


def test_a_row_that_cannot_be_planned_here_leaves_the_other_rows_their_keys(tmp_path, monkeypatch, capsys):
    """``--rows base`` of a spec whose row ``far`` needs weights absent here: +EAB still gets the key of its
    configuration (the table shows only its runs), ``far`` is named and has none (its newest run is shown)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EAN_CACHE_DIR", str(tmp_path / "cache"))
    spec_path = write_yaml(tmp_path / "tiny.yaml", tiny_spec(ROWS))
    args = parse_args(cli_args(tmp_path, spec_path, "--rows", "base", "trainer.epochs=1"))
    profile, seeds, spec = select(load_spec(spec_path), args)
    trials, _ = plan_study(spec, profile, seeds, args)
    keyed = keyed_trials(spec_path, profile, seeds, args, trials)
    assert [t.row.id for t in keyed] == ["base", "eab"] and keyed[0].key == trials[0].key
    alone = parse_args(cli_args(tmp_path, spec_path, "--rows", "eab", "trainer.epochs=1"))
    _, _, eab_only = select(load_spec(spec_path), alone)
    assert keyed[1].key == plan_study(eab_only, profile, seeds, alone)[0][0].key  # the invocation's configuration
    err = capsys.readouterr().err
    assert "note: row far cannot be planned here" in err and "/nowhere/w.pth" in err and "row eab" not in err
