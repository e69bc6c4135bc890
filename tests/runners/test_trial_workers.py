"""A trial's actor can start in a worker process Ray started ahead of need (``runners.scheduler``)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.runners.conftest import REPO

SCRIPT = """
import ray
from ray.tune.execution.class_cache import _ActorClassCache
from runners.scheduler import start_trials_in_waiting_workers

class Trainable:
    pass

start_trials_in_waiting_workers()
trial_env = _ActorClassCache().get(Trainable)._default_options.get("runtime_env")
plain_env = ray.remote(Trainable)._default_options.get("runtime_env")
print(repr(trial_env), repr(plain_env))
"""


def test_tunes_trial_actor_gets_the_runtime_env_of_rays_waiting_workers():
    """Ray hands an actor a waiting worker only when their runtime envs match; Tune's default env var for
    Lightning made every trial wait for a new process. Checked in a fresh interpreter (the change is the
    driver's, process-wide), with no variable set that Tune passes on to its trials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_TRAIN", "RAY_CHDIR", "AWS_"))}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    trial_env, plain_env = done.stdout.split()
    assert trial_env in ("{}", "None") and plain_env in ("{}", "None"), done.stdout
