"""Trials whose resources the Ray they run on can never hold: refused on the local Ray before anything runs,
warned about on a joined cluster (``runners.feasibility``)."""

from __future__ import annotations

import math

import pytest

from runners.feasibility import describe_nodes, placeable, refusal, unplaceable
from runners.trials import Trial
from study.spec import Row
from tests.runners.conftest import cli_args, run_subprocess, tiny_spec, write_yaml

LAPTOP = [{"CPU": 4.0, "memory": 8e9}]
TWO_GPU_NODES = [{"CPU": 8.0, "GPU": 1.0}, {"CPU": 8.0, "GPU": 1.0}]


def a_trial(row: str, cpus: float = 1, gpus: float = 0, workers: int = 1, seed: int = 0) -> Trial:
    config = {"resources": {"cpus": cpus, "gpus": gpus, "workers": workers}}
    return Trial(
        study="s", row=Row(id=row, label=row), seed=seed, config=config, key=f"{row}{seed}", data_fingerprint="fp"
    )


@pytest.mark.parametrize(
    ("bundle", "workers", "nodes", "fits"),
    [
        ({"CPU": 1.0}, 1, LAPTOP, True),
        ({"CPU": 4.0}, 1, LAPTOP, True),
        ({"CPU": 8.0}, 1, LAPTOP, False),
        ({"CPU": 1.0, "GPU": 1.0}, 1, LAPTOP, False),
        ({"CPU": 1.0, "GPU": 0.5}, 1, [{"CPU": 2.0, "GPU": 1.0}], True),
        ({"CPU": 8.0, "GPU": 1.0}, 2, TWO_GPU_NODES, True),  # DDP workers on two nodes
        ({"CPU": 8.0, "GPU": 1.0}, 3, TWO_GPU_NODES, False),
        ({"CPU": 2.0, "GPU": 1.0}, 2, [{"CPU": 8.0, "GPU": 2.0}], True),
        ({"CPU": 6.0, "GPU": 1.0}, 2, [{"CPU": 8.0, "GPU": 2.0}], False),  # CPUs for one worker only
        ({"CPU": 1.0}, 1, [], False),
        ({"CPU": 6.0}, 1, [{"CPU": 4.0}, {"CPU": 4.0}], False),  # 8 CPUs in all, but 6 on no one node
        ({"CPU": 1.0, "GPU": 0.4}, 6, [{"CPU": 16.0, "GPU": 3.0}], True),  # two 0.4s within each GPU
        ({"CPU": 1.0, "GPU": 0.4}, 7, [{"CPU": 16.0, "GPU": 3.0}], False),  # 2.8 GPUs, but not within GPUs
        ({"CPU": 0.1}, 3, [{"CPU": 0.3}], True),  # 0.3 / 0.1 is 2.9999999999999996 in floats
    ],
)
def test_a_trial_is_placeable_where_each_worker_fits_on_a_node(bundle, workers, nodes, fits):
    assert placeable(bundle, workers, nodes) is fits


def test_the_unplaceable_asks_are_named_once_each_with_their_rows():
    trials = [a_trial(row, gpus=1, seed=seed) for row in ("eab", "tsn") for seed in (0, 1, 2)]
    trials += [a_trial("big", cpus=8), a_trial("ok"), a_trial("ddp", cpus=2, workers=4)]
    assert unplaceable(trials, LAPTOP) == [
        "rows eab, tsn ask per trial 1 CPU and 1 GPU",
        "row big asks per trial 8 CPUs",
        "row ddp asks 4 workers of 2 CPUs each",
    ]
    assert unplaceable([a_trial("ok"), a_trial("ddp", cpus=2, workers=2)], LAPTOP) == []
    message = refusal(unplaceable(trials, LAPTOP), LAPTOP)
    assert message.startswith("some trials can never start on this machine's Ray (1 node: 4 CPUs, 0 GPUs): ")
    assert "resources=default" in message and "--address" in message
    assert describe_nodes(TWO_GPU_NODES) == "2 nodes, at most 8 CPUs and 1 GPU on one"
    assert describe_nodes([{"CPU": 64.0}, {"CPU": 4.0, "GPU": 1.0}]) == "2 nodes, at most 64 CPUs and 1 GPU on one"


def test_more_rows_than_named_are_counted():
    trials = [a_trial(f"r{i}", gpus=1) for i in range(7)]
    assert unplaceable(trials, LAPTOP) == ["rows r0, r1, r2, r3, r4 and 2 more ask per trial 1 CPU and 1 GPU"]


@pytest.mark.parametrize("address", [None, "10.0.0.1:6379"])
def test_the_local_ray_refuses_and_a_joined_cluster_warns(monkeypatch, capsys, address):
    import types

    from runners import session

    monkeypatch.setattr(session, "_node_resources", lambda: LAPTOP)
    driver = types.SimpleNamespace(
        todo=[a_trial("ok"), a_trial("eab", gpus=1)], args=types.SimpleNamespace(address=address)
    )
    assert session.StudySession.resources_fit(driver) is bool(address)
    err = capsys.readouterr().err
    said = "warning: the cluster (1 node: 4 CPUs, 0 GPUs) cannot hold" if address else "error: some trials can never"
    assert said in err and "row eab asks per trial 1 CPU and 1 GPU" in err
    driver.todo = [a_trial("ok")]
    assert session.StudySession.resources_fit(driver) is True and capsys.readouterr().err == ""


def test_the_nodes_are_the_alive_ones(monkeypatch):
    import ray

    from runners import session

    nodes = [{"Alive": True, "Resources": {"CPU": 2.0}}, {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}}]
    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    assert session._node_resources() == [{"CPU": 2.0}]


@pytest.mark.slow
def test_a_study_no_node_can_hold_is_refused_before_anything_runs(study_dir):
    """A GPU and 4096 CPUs per trial, which no machine running this has: the study ends once the local Ray has
    started, with the reason and the choices, instead of Tune waiting for ever; no run opened, nothing trained."""
    from mlflow.tracking import MlflowClient

    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([{"id": "base", "label": "Base", "overrides": []}]))
    args = cli_args(study_dir, spec, "resources=gpu", "resources.cpus=4096", "--no-report")
    out = run_subprocess(study_dir, args, timeout=150)
    assert out.returncode == 2, out.stderr[-3000:]
    assert "error: some trials can never start on this machine's Ray (1 node: " in out.stderr
    assert "row base asks per trial 4096 CPUs and 1 GPU" in out.stderr and "resources=default" in out.stderr
    client = MlflowClient(f"sqlite:///{study_dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []
    assert not list((study_dir / "runs").glob("tiny/*/checkpoints"))


def test_the_machine_node_looks_for_gpus_only_where_a_trial_asks_for_one(monkeypatch):
    import os

    from runners import feasibility

    def no_search():
        raise AssertionError("GPUs looked for")

    monkeypatch.setattr(feasibility, "machine_gpus", no_search)
    assert feasibility.machine_node([a_trial("ok", cpus=2)]) == {"CPU": float(os.cpu_count())}
    monkeypatch.setattr(feasibility, "machine_gpus", lambda: 3)
    assert feasibility.machine_node([a_trial("ok"), a_trial("eab", gpus=1)]) == {
        "CPU": float(os.cpu_count()),
        "GPU": 3.0,
    }
    monkeypatch.setattr(feasibility, "machine_gpus", lambda: None)  # not found: the CPUs alone are checked
    assert feasibility.machine_node([a_trial("eab", gpus=1)]) == {"CPU": float(os.cpu_count()), "GPU": math.inf}
    said = feasibility.dry_run_warning([a_trial("eab", gpus=1), a_trial("big", cpus=4096, gpus=1)])
    assert "GPUs not known): row big asks per trial 4096 CPUs and 1 GPU" in said and "eab" not in said


def test_ray_counts_the_visible_gpus_of_those_it_finds(monkeypatch):
    """Ray's own detection on a machine of 4 GPUs (its count stubbed): those ``CUDA_VISIBLE_DEVICES`` shows."""
    from ray._private import accelerators

    from runners.feasibility import machine_gpus

    manager = accelerators.get_accelerator_manager_for_resource("GPU")
    monkeypatch.setattr(manager, "get_current_node_num_accelerators", staticmethod(lambda: 4))
    for visible, gpus in (("", 0), ("0,1", 2), ("0,1,2,3,4,5", 4)):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert machine_gpus() == gpus
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert machine_gpus() == 4


def test_no_gpu_kind_known_to_ray_is_no_gpu_and_a_ray_without_the_internals_is_unknown(monkeypatch):
    from ray._private import accelerators

    from runners.feasibility import machine_gpus

    monkeypatch.setattr(accelerators, "get_accelerator_manager_for_resource", lambda name: None)
    assert machine_gpus() == 0
    monkeypatch.delattr(accelerators, "get_accelerator_manager_for_resource")
    assert machine_gpus() is None


@pytest.mark.parametrize(("gpus", "warned"), [(0, True), (1, False), (None, False)])  # None: not found
def test_the_dry_run_warning_names_what_this_machine_cannot_hold(monkeypatch, gpus, warned):
    from runners import feasibility

    monkeypatch.setattr(feasibility, "machine_gpus", lambda: gpus)
    said = feasibility.dry_run_warning([a_trial("ok"), a_trial("eab", gpus=1)])
    if not warned:
        assert said is None
        return
    assert said.startswith("warning: the run would stop before any trial: some trials can never start on this ")
    assert "0 GPUs): row eab asks per trial 1 CPU and 1 GPU" in said


@pytest.mark.parametrize("address", [None, "10.0.0.1:6379"])
def test_a_dry_run_says_what_the_local_ray_would_refuse(study_dir, capsys, address):
    """4096 CPUs per trial, which no machine running this has: the dry run prints its plan and says the run
    would stop (exit 0: it only tells); with --address the cluster's nodes are not known yet, nothing is said."""
    from runners.run import main

    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([{"id": "base", "label": "Base", "overrides": []}]))
    extra = ["--address", address] if address else []
    assert main(cli_args(study_dir, spec, "resources.cpus=4096", "--dry-run", *extra)) == 0
    out = capsys.readouterr()
    assert "tiny/base/seed0" in out.out
    warned = "warning: the run would stop before any trial: some trials can never start on this machine's Ray"
    assert (warned in out.err and "row base asks per trial 4096 CPUs" in out.err) is (address is None)
    assert main(cli_args(study_dir, spec, "--dry-run")) == 0
    assert "would stop" not in capsys.readouterr().err
