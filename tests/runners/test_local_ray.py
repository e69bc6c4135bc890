"""The local Ray the runner starts listens on the loopback interface only, with token authentication on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.runners.conftest import REPO

pytestmark = pytest.mark.slow

PROBE = """
from runners.local_ray import use_local_ray_settings
use_local_ray_settings()
import json, os, psutil, ray
from runners.scheduler import start_ray
from ray._private.authentication.authentication_utils import is_token_auth_enabled
start_ray(None, num_cpus=1)
ray.get(ray.remote(lambda: 1).remote())  # a worker process too
procs = [psutil.Process()] + psutil.Process().children(recursive=True)
listening = set()
for proc in procs:
    try:
        listening |= {c.laddr.ip for c in proc.net_connections("inet") if c.status == psutil.CONN_LISTEN}
    except psutil.Error:
        pass
print(json.dumps({"listening": sorted(listening), "token_auth": is_token_auth_enabled()}))
ray.shutdown()
"""


def test_the_local_ray_listens_on_loopback_only_with_token_auth():
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["listening"], "no listening socket found: the probe is broken"
    assert set(found["listening"]) <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, found["listening"]
    assert found["token_auth"] is True
