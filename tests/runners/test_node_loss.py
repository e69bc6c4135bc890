"""A node lost under a running trial: on a multi-node Ray cluster (``ray.cluster_utils.Cluster``, every node a
set of processes on this machine) the trial is rescheduled on another node and resumes from its checkpoint."""

from __future__ import annotations

import pytest

from runners.local_ray import use_local_ray_settings
from tests.runners.conftest import cli_args, tiny_spec, trial_runs, write_yaml
from tests.runners.test_driver_faults import (
    ROW_BASE,
    Driver,
    alive,
    checkpoint_epoch,
    epoch_steps,
    read_starts,
    workdirs,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster():
    use_local_ray_settings()  # the cluster and the driver (which inherits the environment) agree on auth
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0})
    yield cluster
    cluster.shutdown()


def test_a_trial_on_a_lost_node_resumes_on_another_from_its_checkpoint(study_dir, cluster):
    first = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    spec = write_yaml(study_dir / "tiny.yaml", tiny_spec([ROW_BASE]))
    args = cli_args(study_dir, spec, "--no-report", "--address", cluster.address, "trainer.epochs=4")
    driver = Driver(study_dir, args)
    driver.wait_for(lambda: any(checkpoint_epoch(w) >= 1 for w in workdirs(study_dir)))
    (workdir,) = workdirs(study_dir)
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    cluster.remove_node(first)  # its raylet and workers die, the trial's process with them
    lost_after = checkpoint_epoch(workdir)
    assert driver.process.wait(timeout=600) == 0, driver.output[-3000:]
    driver.process.stdout.close()

    starts = read_starts(workdir)
    assert [s["start_epoch"] for s in starts] == [1, lost_after + 1], f"lost after epoch {lost_after}"
    assert not alive(starts[0]["pid"]) and starts[1]["pid"] != starts[0]["pid"]
    (run,) = trial_runs(study_dir)
    assert run.info.status == "FINISHED"
    assert epoch_steps(study_dir, run.info.run_id) == [1, 2, 3, 4]
    assert "crashed" in driver.output  # Tune saw the trial fail with its node, and retried it
