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


#: With pytest-xdist (``-n 2``, ``--dist loadgroup``), the `slow` tests that start local Ray clusters, MLflow
#: servers and drivers, which must not overlap, run one after another in one worker; the rest, which start none
#: of these, run meanwhile in the other worker.
SERIAL_GROUP = "slow"
#: Where the `slow` tests start none of those (full-size models, gloo process groups on a free port, a wheel
#: installed into a fresh venv, decoding): they run beside the serial group, like the fast tests. A new slow
#: test elsewhere is serial by default.
PARALLEL_SLOW = ("tests/models/", "tests/train/", "tests/data/")
#: Modules whose tests share an expensive module fixture (a wheel installed into a fresh venv): one group each,
#: beside the serial group.
#: xdist hands out the groups with the most tests first, so the serial group (about 24 tests, most of the
#: suite's time) starts at once, as long as it stays the largest.
MODULE_GROUPS = ("tests/test_installed.py",)
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
            group = _xdist_group(item)
            if group:
                item.add_marker(pytest.mark.xdist_group(group))
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


def _xdist_group(item: pytest.Item) -> str | None:
    """The xdist group of a test: the serial one for a `slow` test that may start a cluster, its module's for
    one of ``MODULE_GROUPS``, none otherwise (xdist then hands it out alone)."""
    module = item.nodeid.split("::")[0]
    if module.startswith(MODULE_GROUPS):
        return module
    if "slow" in item.keywords and not module.startswith(PARALLEL_SLOW):
        return SERIAL_GROUP
    return None


@pytest.fixture
def pages_of_two(monkeypatch):
    """The sqlite MLflow store answers every search a page of two at most (``tests.mlflow_pages``)."""
    from tests.mlflow_pages import answer_pages_of_two

    answer_pages_of_two(monkeypatch)
