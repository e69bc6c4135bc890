"""The local Ray the runner starts listens on the loopback interface only, with token authentication on, and its
raylet retries its socket connections often (``runners.local_ray``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.runners.conftest import REPO

pytestmark = pytest.mark.slow

PROBE = """
from runners.local_ray import use_local_ray_settings
use_local_ray_settings()
import json, os, psutil, ray
from runners.local_ray import start_ray
from ray._private.authentication.authentication_utils import is_token_auth_enabled
from ray._private import services
from ray._private.state import GlobalState

asked = []  # whether the GCS listed the node alive when Ray's own wait for it (1 s between tries) was called
ray_wait = services.get_node


def spy(gcs_address, node_id):
    state = GlobalState()
    state._initialize_global_state(services._get_gcs_client_options(gcs_address))
    asked.append(any(n["NodeID"] == node_id and n["Alive"] for n in state.node_table()))
    state.disconnect()
    return ray_wait(gcs_address, node_id)


services.get_node = spy
start_ray(None, num_cpus=1)
restored = services.get_node is spy
ray.get(ray.remote(lambda: 1).remote())  # a worker process too
procs = [psutil.Process()] + psutil.Process().children(recursive=True)
listening, raylet_env = set(), None
for proc in procs:
    if proc.name() == "raylet":
        raylet_env = {k: v for k, v in proc.environ().items() if k.startswith("RAY_raylet_client")}
    try:
        listening |= {c.laddr.ip for c in proc.net_connections("inet") if c.status == psutil.CONN_LISTEN}
    except psutil.Error:
        pass
print(json.dumps({"listening": sorted(listening), "token_auth": is_token_auth_enabled(), "raylet_env": raylet_env,
                  "registered_when_asked": asked, "restored": restored}))
ray.shutdown()
"""


def run_probe(code: str) -> dict:
    """Runs ``code`` in a fresh interpreter without the caller's Ray settings; the JSON of its last line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_local_ray_listens_on_loopback_only_with_token_auth():
    found = run_probe(PROBE)
    assert found["listening"], "no listening socket found: the probe is broken"
    assert set(found["listening"]) <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, found["listening"]
    assert found["token_auth"] is True
    # the raylet retries its connections every 50 ms (not every second), as long in all as Ray's default 10 s
    retry, attempts = (
        int(found["raylet_env"][f"RAY_raylet_client_{k}"])
        for k in ("connect_timeout_milliseconds", "num_connect_attempts")
    )
    assert retry <= 100 and retry * attempts >= 10_000, found["raylet_env"]
    # Ray's wait for the raylet's registration is called once the node is registered (its first try finds it)
    assert found["registered_when_asked"] == [True] and found["restored"], found


def test_a_ray_started_by_hand_on_this_machine_does_not_capture_a_study_without_address(tmp_path):
    """`ray start --head` on the machine (a user's, another tool's) writes its address where ``ray.init()`` looks
    first: the runner without --address still starts a Ray of its own (joining that one, ray.init refused the CPU
    count it was given, and a study would run on someone else's cluster)."""
    import signal
    import socket

    from tests.runners.conftest import cli_args, tiny_spec, write_yaml

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"  # where a head started by hand says it is
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--port", str(port), "--num-cpus", "1", "--include-dashboard", "false",
         "--node-ip-address", "127.0.0.1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(240):
            if (current.is_file() and str(port) in current.read_text()) or head.poll() is not None:
                break
            time.sleep(0.5)
        assert head.poll() is None and str(port) in current.read_text(), "the hand-started head did not come up"
        spec = write_yaml(tmp_path / "tiny.yaml", tiny_spec([{"id": "base", "label": "Base"}]))
        run = subprocess.run(
            [sys.executable, "-m", "runners.run", *cli_args(tmp_path, spec, "--no-report")],
            cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        assert head.poll() is None, "the hand-started head died"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
        if current.is_file() and str(port) in current.read_text():
            current.unlink()


EXIT_PROBE = """
import atexit, json, psutil
from runners.local_ray import use_local_ray_settings
use_local_ray_settings()
import ray
from ray._private import node as node_module, ray_constants
from runners.local_ray import start_ray

seen = {}


def after_the_runners_handler():  # registered before start_ray: runs after the runner's handler, before Ray's
    seen["ray_running"] = ray.is_initialized()
    print(json.dumps(seen), flush=True)


atexit.register(after_the_runners_handler)
kill = node_module.Node._kill_process_impl


def spy(self, process_type, **kwargs):
    if process_type == ray_constants.PROCESS_TYPE_MONITOR:
        infos = self.all_processes.get(process_type, [])
        seen["monitor_alive_when_ray_stopped_it"] = any(info.process.poll() is None for info in infos)
    return kill(self, process_type, **kwargs)


node_module.Node._kill_process_impl = spy
start_ray(None, num_cpus=1)
seen["pids"] = [p.pid for p in psutil.Process().children(recursive=True)]
"""


def test_the_local_ray_stops_at_exit_its_monitor_first_and_leaves_no_process():
    """The driver's exit stops its local Ray through the runner's handler (Ray's own waits 0.5 s for log lines),
    and the autoscaler monitor is killed before Ray's shutdown stops the GCS, which the monitor's SIGTERM
    handler would wait on for a second."""
    import psutil

    seen = run_probe(EXIT_PROBE)
    assert seen["ray_running"] is False and seen["monitor_alive_when_ray_stopped_it"] is False, seen
    assert len(seen["pids"]) >= 5, seen  # GCS, raylet, monitor, log monitor, dashboard, agents
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(psutil.pid_exists(pid) for pid in seen["pids"]):
        time.sleep(0.2)
    left = [psutil.Process(pid).cmdline()[:2] for pid in seen["pids"] if psutil.pid_exists(pid)]
    assert not left, left
