"""The README's cluster section ("On a cluster"), tested on this machine: a study driven on a two-node
``ray.cluster_utils.Cluster`` with a trial on each node; the driver submitted as a Ray job (``ray job submit``)
to a head started with ``ray start --head``; the default concurrency cap, from the cluster's resources."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from runners.local_ray import LOCAL_RAY_ENV, use_local_ray_settings
from study import mlflow_schema as S
from tests.runners.conftest import cli_args, run_subprocess, tiny_spec, trial_runs, write_yaml
from tests.runners.test_driver_faults import ROW_BASE, ROW_EAB

# -- the default concurrency cap (fast) -------------------------------------------------------------------------


def test_the_default_cap_is_what_the_clusters_gpus_hold_for_gpu_trials_and_its_cpus_for_cpu_trials():
    from runners.demand import default_concurrency, trial_demand

    cluster = {"CPU": 64.0, "GPU": 8.0, "memory": 1e12}
    one_gpu = trial_demand({"resources": {"cpus": 4, "gpus": 1}})
    assert one_gpu == {"CPU": 4.0, "GPU": 1.0}
    assert default_concurrency(cluster, [one_gpu]) == 8
    assert default_concurrency(cluster, [trial_demand({"resources": {"gpus": 0.5}})]) == 16  # two trials a GPU
    ddp = trial_demand({"resources": {"workers": 4, "gpus": 1, "cpus": 2}})  # the trial itself holds a token
    assert ddp == {"CPU": 8.0, "GPU": 4.0}
    assert default_concurrency(cluster, [ddp]) == 2  # floor(8 GPUs / 4 per trial)
    assert default_concurrency({"CPU": 64.0, "GPU": 6.0}, [ddp]) == 1  # floor(6 / 4)
    assert default_concurrency({"CPU": 4.0, "GPU": 8.0}, [one_gpu]) == 1  # the CPUs bind first
    cpu = trial_demand({"resources": {"cpus": 2}})
    assert cpu == {"CPU": 2.0}
    assert default_concurrency({"CPU": 7.0, "GPU": 8.0}, [cpu]) == 3  # GPUs do not count for CPU trials
    assert default_concurrency({"CPU": 2.0}, [trial_demand({})]) == 2  # a trial asks 1 CPU by default
    assert default_concurrency(cluster, [ddp, one_gpu]) == 8  # as many as fit of the smallest trial
    assert default_concurrency({"CPU": 64.0}, [one_gpu]) == 1  # no GPU (yet): at least one
    assert default_concurrency(cluster, []) == 1


# -- a two-node cluster -----------------------------------------------------------------------------------------


@pytest.fixture
def cluster():
    """A head without CPUs; the test adds the nodes. It and the driver (which inherits this environment) agree
    on authentication: token, as the runner's local Ray."""
    if not use_local_ray_settings():  # another test module imported ray first: turn token auth on as Ray does
        from ray._private.authentication.authentication_token_setup import _enable_token_auth

        _enable_token_auth()
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0})
    yield cluster
    cluster.shutdown()


@pytest.mark.slow
def test_a_study_on_a_two_node_cluster_runs_a_trial_on_each_node(study_dir, cluster):
    """The README's driver command (``--address`` of the cluster) on a head without CPUs and two nodes of one
    CPU each: the two trials (one CPU each) run at once, one on each node, and both runs are FINISHED, each
    tagged with the Ray node that trained it."""
    workers = {cluster.add_node(num_cpus=1).node_id, cluster.add_node(num_cpus=1).node_id}
    cluster.wait_for_nodes()
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([ROW_BASE, ROW_EAB]))
    args = cli_args(study_dir, spec, "--no-report", "--address", cluster.address, "trainer.epochs=2")
    out = run_subprocess(study_dir, args)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    runs = trial_runs(study_dir)
    assert sorted(r.data.tags[S.TAG_ROW] for r in runs) == ["base", "eab"]
    assert all(r.info.status == "FINISHED" for r in runs), [r.info.status for r in runs]
    nodes = [r.data.tags.get(S.TAG_RAY_NODE) for r in runs]
    assert set(nodes) == workers, f"trials ran on {nodes}; the worker nodes are {workers}"


# -- ray job submit to a head started with ray start --head ----------------------------------------------------


def free_ports(n: int) -> list[int]:
    """``n`` ports free on the loopback interface now (held together while chosen, so distinct)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def ray_cli(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("ray")), *args]


def stop_group(leader: int, grace: float = 15.0) -> None:
    """Ends the processes of the process group ``leader`` (the head's, started here; never ``ray stop``, which
    stops every Ray on the machine): SIGTERM, then SIGKILL after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(leader, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + grace
        while time.time() < deadline and _group_alive(leader):
            time.sleep(0.5)
        if not _group_alive(leader):
            return


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process of group ``pgid`` is left."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


@pytest.fixture
def head(tmp_path):
    """A Ray head of two CPUs started with ``ray start --head``, its dashboard (jobs API) on 127.0.0.1, token
    authentication on with a token of its own that the clients of the test share
    (``RAY_AUTH_TOKEN_PATH``); yields the environment for its clients and the dashboard's address."""
    pytest.importorskip(
        "ray.dashboard.optional_deps",
        reason="the Ray jobs API lives in the dashboard, which needs ray[default]'s packages (not installed)",
    )
    token = tmp_path / "ray_token"
    token.write_text(os.urandom(32).hex())
    env = {**os.environ, **LOCAL_RAY_ENV, "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # the job's `python`
    # short (Ray's socket paths lie under it), and its own: the head's address file goes there, not to
    # /tmp/ray/ray_current_cluster, where any ray.init() on this machine would find it
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    gcs, dashboard, agent, client = free_ports(4)
    start = subprocess.Popen(
        ray_cli(
            "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(gcs), "--num-cpus", "2",
            "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
            "--dashboard-agent-listen-port", str(agent), "--ray-client-server-port", str(client),
            "--temp-dir", temp_dir, "--disable-usage-stats",
        ),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = start.communicate(timeout=300)
        assert start.returncode == 0, output[-3000:]
        yield env, f"http://127.0.0.1:{dashboard}"
    finally:
        stop_group(start.pid)  # the head's processes keep the group of the `ray start` that spawned them
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_the_driver_submitted_as_a_ray_job_runs_the_study(tmp_path, head):
    """The README's ``ray job submit --working-dir ... -- python -m runners.run ... --address auto``: the job
    uploads a folder holding only the spec, runs the driver on the head (the project is installed there), and
    ``ray job submit`` waits for it and exits 0; the trial's run is FINISHED in the sqlite store."""
    env, dashboard = head
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    write_yaml(job_dir / "tiny.yaml", tiny_spec([ROW_BASE]))
    store, storage = tmp_path / "mlflow.db", tmp_path / "runs"
    submit = subprocess.run(
        ray_cli(
            "job", "submit", "--address", dashboard, "--working-dir", str(job_dir), "--",
            "python", "-m", "runners.run", "tiny.yaml", "--address", "auto",
            "--mlflow-uri", f"sqlite:///{store}", "--storage", str(storage), "--no-report",
        ),
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert submit.returncode == 0, submit.stdout[-4000:] + submit.stderr[-3000:]
    assert "succeeded" in submit.stdout, submit.stdout[-3000:]
    (run,) = trial_runs(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.tags.get(S.TAG_RAY_NODE)


@pytest.mark.slow
def test_without_a_token_the_jobs_api_refuses_the_submission(tmp_path, head):
    """The head's jobs API asks for the token: a client without it is refused and nothing runs."""
    env, dashboard = head
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    other_token = tmp_path / "other_token"
    other_token.write_text(os.urandom(32).hex())
    submit = subprocess.run(
        ray_cli("job", "submit", "--address", dashboard, "--working-dir", str(job_dir), "--", "true"),
        env={**env, "RAY_AUTH_TOKEN_PATH": str(other_token)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert submit.returncode != 0, submit.stdout[-3000:]
    assert "Invalid authentication token" in submit.stdout + submit.stderr, submit.stderr[-3000:]
