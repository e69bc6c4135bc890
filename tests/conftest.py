"""Shared pytest set-up: CPU by default; `gpu`-marked tests are skipped where no CUDA device exists; the
on-disk cache (``runners.cache``) in a folder of the test session, not the user's; under pytest-xdist the
`slow` tests that start Ray clusters, MLflow servers or drivers in one worker, one after another."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_cache_dir(tmp_path_factory):
    """Every test (and every process a test starts) caches under the session's temporary folder."""
    before = os.environ.get("EAN_CACHE_DIR")
    os.environ["EAN_CACHE_DIR"] = str(tmp_path_factory.mktemp("ean_cache"))
    yield
    if before is None:
        os.environ.pop("EAN_CACHE_DIR", None)
    else:
        os.environ["EAN_CACHE_DIR"] = before


#: With pytest-xdist (``-n 2``, ``--dist loadgroup``), the `slow` tests run one after another in one worker:
#: they start local Ray clusters, MLflow servers and drivers that must not overlap; the rest, which start none
#: of these, run meanwhile in the other worker.
SERIAL_GROUP = "slow"
#: Where the `slow` tests start none of those (full-size models, gloo process groups on a free port, a wheel
#: installed into a fresh venv, decoding): each of these modules is a group of its own (its module fixtures
#: then run once), free to run beside the serial group. A new slow test elsewhere is serial by default.
PARALLEL_SLOW = ("tests/models/", "tests/train/", "tests/data/", "tests/test_installed.py")
#: The serial test that trains most (the demo study, 6 trials): last, when the other worker has little left.
RUN_LAST = ("tests/runners/test_demo.py",)


def pytest_configure(config):
    """Under pytest-xdist, each test process takes its share of the cores for torch's threads: two processes of
    two threads each on two cores made every torch operation wait on OpenMP threads that had no core."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def pytest_collection_modifyitems(config, items):
    if config.pluginmanager.hasplugin("xdist"):
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(pytest.mark.xdist_group(_slow_group(item.nodeid)))
        items.sort(key=lambda item: item.nodeid.startswith(RUN_LAST))  # stable: the rest keep their order
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run on a GPU machine: python -m pytest -m gpu)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _slow_group(nodeid: str) -> str:
    """The xdist group of a `slow` test: its module where it starts no cluster, else the serial one."""
    module = nodeid.split("::")[0]
    return module if module.startswith(PARALLEL_SLOW) else SERIAL_GROUP
