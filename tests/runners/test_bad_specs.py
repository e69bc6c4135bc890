"""Bad specs and overrides are rejected before anything runs: exit 2, a precise message, nothing logged."""

from pathlib import Path

import pytest
import yaml

from runners.run import EXIT_BAD_INPUT, main

GOOD = {
    "name": "tiny",
    "title": "A tiny study",
    "overrides": ["data=synthetic", "trainer=smoke", "model.pretrained=null", "model.backbone=resnet18"],
    "seeds": [0],
    "protocol": {"clips": 1, "crops": 1},
    "columns": ["params", "top1"],
    "baseline": "base",
    "rows": [
        {"id": "base", "label": "Baseline", "overrides": ["block=none"]},
        {"id": "eab", "label": "+EAB", "overrides": ["block=eab"]},
    ],
    "profiles": {"smoke": ["model.num_segments=4"]},
}


def write_spec(tmp_path: Path, **changes) -> Path:
    spec = {**GOOD, **changes}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_cli(tmp_path: Path, spec: Path, *extra: str) -> None:
    db = tmp_path / "mlflow.db"
    code = main([str(spec), "--mlflow-uri", f"sqlite:///{db}", "--storage", str(tmp_path / "runs"), *extra])
    assert code == EXIT_BAD_INPUT
    assert not db.exists(), "a rejected spec must log nothing"
    assert not (tmp_path / "runs").exists(), "a rejected spec must start nothing"


def row(overrides):
    return [{"id": "base", "label": "Baseline", "overrides": overrides}]


CASES = {
    "unknown spec key": ({"rowz": []}, [], ["rowz"]),
    "unknown block": (
        {"rows": row(["block=s_blok"])},
        [],
        ["unknown block 's_blok'", "(did you mean 'block=s_block'?)", "valid block options", "s_block"],
    ),
    "unknown fusion": ({"rows": row(["fusion=dynamc"])}, [], ["unknown fusion 'dynamc'", "dynamic"]),
    "unknown model key": (
        {"rows": row(["model.blok=eab"])},
        [],
        ["unknown config key 'model.blok' (did you mean 'model.block'?)", "valid keys of model: ", "temporal_conv"],
    ),
    "unknown block option": (
        {"rows": row(["+model.block_options.pooling=max"])},
        [],
        ["row 'base'", "options ['pooling'] are not accepted", "valid options: pool"],
    ),
    "code in a spec": ({"rows": row(["+model._target_=os.system"])}, [], ["_target_"]),
    "environment resolver": ({"rows": row(["model.pretrained=${oc.env:HOME}"])}, [], ["oc.env"]),
    "missing dataset": (
        {"overrides": ["data=something_v1", "data.root=/nonexistent/sth"]},
        [],
        ["data.root '/nonexistent/sth' does not exist", "something_v1", "data=synthetic"],
    ),
    "wrong type": (
        {"rows": row(["model.num_segments=eight"])},
        [],
        ["model.num_segments = 'eight'", "positive integer"],
    ),
    "unknown dataset": ({"rows": row(["data.dataset=ucf101"])}, [], ["unknown dataset 'ucf101'", "something_v2"]),
    "unknown profile": ({}, ["--profile", "fast"], ["unknown profile 'fast'", "valid profiles: smoke"]),
    "duplicate rows": ({"rows": row([]) * 2}, [], ["base"]),
    "baseline not a row": ({"baseline": "resnet"}, [], ["resnet"]),
    "bad resources": ({"rows": row(["resources.workers=0"])}, [], ["resources.workers = 0"]),
    "unknown trainer key": (
        {"rows": row(["trainer.epoch=3"])},
        [],
        ["unknown config key 'trainer.epoch' (did you mean 'trainer.epochs'?)", "valid keys of trainer: epochs,"],
    ),
    "unknown top-level key": ({"rows": row(["sed=3"])}, [], ["unknown config key 'sed' (did you mean 'seed'?)"]),
    "valid key the config files leave out": (
        {"rows": row(["trainer.batchnorm=frozen"])},
        [],
        ["config key 'trainer.batchnorm' is valid but the config files leave it out", "'+trainer.batchnorm=...'"],
    ),
    "key under a valid key the config files leave out": (
        {"rows": row(["model.motion_options.latent=128"])},
        [],
        ["config key 'model.motion_options.latent' is valid but the config files leave 'model.motion_options' out"],
    ),
    "dataset given as an interpolation, with an unknown key": (
        {"rows": row(["data.dataset=${nope}", "data.xx=1"])},
        [],
        ["unknown config key 'data.xx'", "valid keys of data: "],
    ),
    "typo of a key the config files leave out": (
        {"rows": row(["data.test_crop_siz=256"])},
        [],
        [
            "unknown config key 'data.test_crop_siz' (did you mean '+data.test_crop_size'?)",
            "with '+' (not in the config files): ",
            "test_crop_size",
        ],
    ),
    "bad seeds": ({}, ["--seeds", "0,one"], ["--seeds must be comma-separated integers"]),
    "negative seed": ({}, ["--seeds=-1"], ["--seeds must be non-negative integers"]),
    "empty seeds": ({}, ["--seeds="], ["--seeds is empty"]),
    "empty rows": ({}, ["--rows="], ["--rows is empty"]),
    "json without a dry run": ({}, ["--json"], ["--json goes with --dry-run"]),
    "estimate without a dry run": ({}, ["--estimate"], ["--estimate goes with --dry-run"]),
    "no concurrency": ({}, ["--max-concurrent", "0"], ["--max-concurrent must be at least 1, got 0"]),
    "negative retries": ({}, ["--max-failures=-1"], ["--max-failures must be 0 or more"]),
    "waiting nan seconds": ({}, ["--mlflow-wait", "nan"], ["--mlflow-wait must be a number of seconds"]),
    "looking again every 0 s": ({}, ["--wait", "--wait-every", "0"], ["--wait-every must be a number of seconds"]),
    "waiting in a dry run": ({}, ["--wait", "--dry-run"], ["--wait goes with a run, not --dry-run"]),
    "storage under a file": (
        {},
        ["--storage", "study.yaml/runs"],
        ["--storage study.yaml/runs: ", "study.yaml is a file, not a folder; the trials write their checkpoints"],
    ),
    "override without a key": ({}, ["=3"], ["override '=3' names no key"]),
    "override Hydra cannot read": (
        {},
        ["trainer.lr=0.01)"],
        ["override 'trainer.lr=0.01)' is not an override Hydra can read", "write KEY=VALUE"],
    ),
    "unclosed list": ({}, ["block=[eab"], ["override 'block=[eab' is not an override Hydra can read"]),
    "plus on a key the config has": (
        {},
        ["+trainer.lr=0.1"],
        ["override '+trainer.lr=0.1' adds trainer.lr, which the config has already: drop the '+' (trainer.lr=0.1)"],
    ),
    "deletion on the command line": ({}, ["~block"], ["override '~block' deletes a key", "e.g. block=none"]),
    "deletion in a row": ({"rows": row(["~block"])}, [], ["row 'base'", "'~block' deletes a key"]),
    "override without a value": ({}, ["trainer.lr"], ["override 'trainer.lr' sets no value"]),
    "command-line group typo named as typed": (
        {},
        ["block=eabb"],
        ["unknown block 'eabb' (override 'block=eabb') (did you mean 'block=eab'?)"],
    ),
    "only reference rows": (
        {"rows": [*GOOD["rows"], {"id": "tsm", "label": "TSM", "reference": {"top1": 45.6, "source": "Lin 2019"}}]},
        ["--rows", "tsm"],
        ["--rows tsm: a reference row is published numbers", "rows that run: base, eab"],
    ),
    "unknown row selected": ({}, ["--rows", "eab,l_block"], ["unknown rows ['l_block']"]),
    "code in a command-line override": ({}, ["+model._target_=os.system"], ["'_target_'", "Python code"]),
    "spaced resolver": ({"rows": row(["model.pretrained=${ oc.env:HOME}"])}, [], ["calls a resolver"]),
    "hydra search path in a row": (
        {"rows": row(["hydra.searchpath=[file:///tmp]"])},
        [],
        ["row 'base'", "Hydra's own settings"],
    ),
    "hydra search path on the command line": ({}, ["hydra.searchpath=[file:///tmp]"], ["Hydra's own settings"]),
    "resolver on the command line": ({}, ["model.pretrained=${env:HOME}"], ["calls a resolver"]),
    "sweep on the command line": (
        {},
        ["trainer.lr=0.01,0.1"],
        [
            "override 'trainer.lr=0.01,0.1' on the command line is a Hydra sweep (2 values)",
            "does not sweep",
            "rows:\n    - id: lr_0_01",
            "overrides: [trainer.lr=0.01]",
            "overrides: [trainer.lr=0.1]",
        ],
    ),
    "range sweep in a row": (
        {"rows": row(["model.num_segments=range(4,12,4)"])},
        [],
        [
            "override 'model.num_segments=range(4,12,4)' of row 'base'",
            "[model.num_segments=4]",
            "[model.num_segments=8]",
        ],
    ),
    "choice sweep in the spec's overrides": (
        {"overrides": [*GOOD["overrides"], "block=choice(eab,none)"]},
        [],
        ["override 'block=choice(eab,none)' of the spec is a Hydra sweep", "[block=eab]", "[block=none]"],
    ),
    "glob sweep in a profile": (
        {"profiles": {"smoke": ["block=glob(*_block)"]}},
        ["--profile", "smoke"],
        ["override 'block=glob(*_block)' of profile 'smoke'", "[block=s_block]", "[block=l_block]"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_rejected_with_a_precise_message(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    changes, extra, expected = CASES[case]
    run_cli(tmp_path, write_spec(tmp_path, **changes), *extra)
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    for text in expected:
        assert text in err, f"{case}: {text!r} not in {err!r}"


def test_every_problem_is_reported_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [
        {"id": "a", "label": "A", "overrides": ["block=s_blok"]},
        {"id": "b", "label": "B", "overrides": ["regions=detector"]},
    ]
    run_cli(tmp_path, write_spec(tmp_path, rows=rows, baseline="a"))
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and "row 'a'" in err and "row 'b'" in err and "unknown regions 'detector'" in err


def test_every_unknown_choice_of_one_row_is_reported_at_once(tmp_path, capsys, monkeypatch):
    """Hydra stops at the first unknown option; the plan names each (the last setting of a group counts)."""
    monkeypatch.chdir(tmp_path)
    rows = [{"id": "a", "label": "A", "overrides": ["block=eab", "block=my_blok", "fusion=dynamc"]}]
    run_cli(tmp_path, write_spec(tmp_path, rows=rows, baseline="a"))
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and "unknown block 'my_blok' (override 'block=my_blok')" in err
    assert "unknown fusion 'dynamc' (override 'fusion=dynamc') (did you mean 'fusion=dynamic'?)" in err


def test_unknown_study_name_lists_the_studies(tmp_path, capsys):
    assert main(["table99", "--mlflow-uri", f"sqlite:///{tmp_path}/m.db"]) == EXIT_BAD_INPUT
    assert "table8" in capsys.readouterr().err


def test_a_good_spec_plans_without_running(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "mlflow.db"
    assert main([str(write_spec(tmp_path)), "--dry-run", "--mlflow-uri", f"sqlite:///{db}"]) == 0
    out = capsys.readouterr().out
    assert "tiny/base/seed0" in out and "tiny/eab/seed0" in out and "new" in out
    assert not db.exists()


@pytest.mark.parametrize(
    "override, sweep",
    [
        ("trainer.lr=0.01,0.1", True),
        ("trainer.lr=range(1,3)", True),
        ("block=choice(eab,none)", True),
        ("block=glob(*)", True),
        ("trainer.lr=interval(0.001,0.1)", True),
        ("+model.x=1,2", True),
        ("trainer.lr=0.1", False),
        ("model.x='1,2'", False),  # a quoted value is one string
        ('model.x="1,2"', False),
        ("trainer.lr_steps=[10,20]", False),  # a list is one value
        ("block=eab", False),
    ],
)
def test_hydra_sweeps_are_told_by_hydras_parser(override, sweep):
    from runners.compose import sweep_problem

    problem = sweep_problem(override)
    assert (problem is not None) == sweep, problem
    if sweep:
        assert problem.startswith("is a Hydra sweep") and "rows:" in problem


def test_a_sweep_is_refused_before_planning(tmp_path, capsys, monkeypatch):
    """A sweep on the command line is refused once, by name, before any row is composed."""
    import runners.plan

    def no_planning(*args, **kwargs):
        raise AssertionError("planned a study with a sweep")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runners.plan, "build_plan", no_planning)
    run_cli(tmp_path, write_spec(tmp_path), "trainer.lr=0.01,0.1", "--dry-run")
    err = capsys.readouterr().err
    assert err.count("Hydra sweep") == 1 and "every row" not in err and "Ambiguous value" not in err


def test_composing_refuses_a_sweep_whatever_brought_it(tmp_path):
    """``compose_config`` checks every override itself, for callers that build overrides without the CLI."""
    from runners.compose import CompositionError, compose_config, hydra_context

    with hydra_context(), pytest.raises(CompositionError, match="Hydra sweep"):
        compose_config(["data=synthetic", "trainer.lr=0.01,0.1"])


@pytest.mark.parametrize(
    "extra",
    [["--address", "ray://10.0.0.1:10001"], ["--address=RAY://10.0.0.1"], ["--addr", "ray://10.0.0.1:10001"]],
)
def test_a_ray_client_address_is_refused_with_the_job_recipe(extra, tmp_path, capsys, monkeypatch):
    """``--address ray://...`` (Ray Client) is refused before anything starts: the message gives the
    ``ray job submit`` command that runs the driver on the cluster, with ``--address auto``."""
    import runners.run

    def nothing(*args, **kwargs):
        raise AssertionError("started something with a Ray Client address")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runners.run, "find_spec", nothing)
    monkeypatch.setattr(runners.run.signals, "install", nothing)
    spec = write_spec(tmp_path)
    run_cli(tmp_path, spec, "trainer.epochs=2", *extra)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Ray Client" in err
    assert "ray job submit --address http://10.0.0.1:8265 --working-dir . -- python -m runners.run " in err
    submitted = err.split("ray job submit", 1)[1].splitlines()[0]
    assert f"python -m runners.run {spec} --mlflow-uri" in submitted and " trainer.epochs=2" in submitted
    assert ("--address auto" in submitted or "--address=auto" in submitted) and "ray://" not in submitted


def test_rows_that_name_an_ensemble_bring_its_members():
    """``--rows en``: the ensemble averages its members' runs of this plan, so their trials are planned too."""
    import argparse

    from runners.run import select
    from study.spec import parse_spec

    rows = [*GOOD["rows"], {"id": "third", "label": "Third", "overrides": ["block=s_block"]}]
    spec = parse_spec({**GOOD, "rows": [*rows, {"id": "en", "label": "En", "ensemble": ["eab", "base"]}]})
    args = argparse.Namespace(profile=None, seeds=None, rows="en")
    _, _, chosen = select(spec, args)
    assert [r.id for r in chosen.rows] == ["base", "eab", "en"]


def test_a_spec_that_is_not_utf8_or_a_folder_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_bytes(b"\xff\xfename: tiny\n")
    run_cli(tmp_path, tmp_path / "bad.yaml")
    assert "not UTF-8 text" in capsys.readouterr().err
    (tmp_path / "specs").mkdir()
    run_cli(tmp_path, tmp_path / "specs")
    assert "is a folder, not a study spec" in capsys.readouterr().err


@pytest.mark.parametrize(
    "uri, message",
    [
        ("garbage", "is no MLflow tracking store"),
        ("file:///tmp/mlruns", "is MLflow's file store (a plain folder)"),
        ("{tmp}", "mlflow migrate-filestore --source FOLDER"),
        ("sqlite:///{tmp}/not_a_db.db", "is not a sqlite database"),
    ],
)
def test_a_tracking_uri_of_no_mlflow_store_is_refused(tmp_path, capsys, monkeypatch, uri, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not_a_db.db").write_text("name: tiny\n")
    spec = write_spec(tmp_path)
    code = main([str(spec), "--mlflow-uri", uri.format(tmp=tmp_path), "--storage", str(tmp_path / "runs")])
    assert code == EXIT_BAD_INPUT and message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_the_tracking_uri_is_checked_with_the_options_before_the_plan(tmp_path, capsys, monkeypatch):
    """A folder as ``--mlflow-uri`` and a row that would not compose: the option is named, before planning."""
    monkeypatch.chdir(tmp_path)
    code = main([str(write_spec(tmp_path)), "block=eabb", "--dry-run", "--mlflow-uri", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and "mlflow migrate-filestore" in err and "unknown block" not in err


def test_a_web_server_that_is_not_mlflow_is_refused(tmp_path, capsys, monkeypatch):
    """An HTTP server answering 404 for /health and for MLflow's REST API (here Python's own file server)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.chdir(tmp_path)
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        assert main([str(write_spec(tmp_path)), "--mlflow-uri", uri, "--storage", str(tmp_path / "runs")]) == 2
        assert "answers, but is not an MLflow tracking server" in capsys.readouterr().err
    finally:
        server.shutdown()


def test_a_synthetic_root_holding_other_data_is_refused_at_planning(tmp_path, capsys, monkeypatch):
    """The data root of a generated dataset holds another synthetic set (other settings): refused when the study
    is planned, naming both, not when the trial starts."""
    import json

    monkeypatch.chdir(tmp_path)
    root = tmp_path / "synthetic"
    root.mkdir()
    (root / "synthetic.json").write_text(json.dumps({"format": 1, "num_videos": 7, "num_classes": 2}))
    spec = write_spec(tmp_path, overrides=[*GOOD["overrides"], f"data.root={root}"])
    run_cli(tmp_path, spec, "--dry-run")
    err = capsys.readouterr().err
    assert (
        "holds a synthetic dataset generated with {'format': 1, 'num_videos': 7" in err and "another data root" in err
    )


def test_a_data_override_of_a_study_of_several_datasets_is_refused(tmp_path, capsys):
    """Table 1 chooses its data per column: ``data=...`` on the command line would replace every column's."""
    args = [
        "table1",
        "--profile",
        "smoke",
        "--dry-run",
        "data=something_v1",
        "--mlflow-uri",
        f"sqlite:///{tmp_path}/m.db",
    ]
    assert main(args) == EXIT_BAD_INPUT
    assert "compares datasets (something_v1, something_v2)" in capsys.readouterr().err


def test_an_address_where_no_cluster_answers_is_refused_at_once(tmp_path, capsys, monkeypatch):
    """Ray itself would retry for minutes: nothing listens at the port, so exit 2 before anything starts."""
    import socket

    monkeypatch.chdir(tmp_path)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    run_cli(tmp_path, write_spec(tmp_path), "--address", f"127.0.0.1:{port}")
    assert f"--address 127.0.0.1:{port}: no Ray cluster answers there" in capsys.readouterr().err


def test_a_cluster_ray_cannot_join_is_an_error_naming_the_address(monkeypatch):
    """``--address auto`` with no Ray running: Ray's ConnectionError becomes the runner's (exit 2), not a traceback."""
    import ray

    from runners.local_ray import RayUnreachable, start_ray

    def no_cluster(**kwargs):
        raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(RayUnreachable, match="--address auto: Could not find any running Ray instance"):
        start_ray("auto")


def test_the_runner_says_so_and_exits_2_when_ray_cannot_join(tmp_path, capsys, monkeypatch):
    from runners.local_ray import RayUnreachable

    def unreachable(address):
        raise RayUnreachable(f"--address {address}: Could not find any running Ray instance")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("runners.session.start_ray", unreachable)
    spec, db = write_spec(tmp_path), tmp_path / "mlflow.db"
    assert main([str(spec), "--address", "auto", "--mlflow-uri", f"sqlite:///{db}", "--no-report"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err  # MLflow may log its store's creation first
    assert "\nerror: --address auto: Could not find any running Ray instance" in f"\n{err}" and "Traceback" not in err
