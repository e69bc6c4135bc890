"""The local Ray's wait for its raylet (``runners.local_ray.wait_until_registered``), without a Ray: it polls
the node table until the node is alive, and leaves the decision to Ray's own wait where it cannot tell."""

from __future__ import annotations

import pytest

from runners import local_ray
from runners.local_ray import registration_polled, wait_until_registered


class Table:
    """A GlobalState stand-in whose node table lists the node alive from the ``alive_at``-th read on."""

    def __init__(self, alive_at: int | None = 1, error: Exception | None = None):
        self.alive_at, self.error, self.reads, self.disconnected = alive_at, error, 0, False

    def __call__(self):
        return self

    def _initialize_global_state(self, options):
        self.options = options

    def node_table(self):
        self.reads += 1
        if self.error:
            raise self.error
        alive = self.alive_at is not None and self.reads >= self.alive_at
        return [{"NodeID": "other", "Alive": True}, {"NodeID": "n1", "Alive": alive}]

    def disconnect(self):
        self.disconnected = True


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setattr(local_ray, "NODE_POLL_S", 0.001)


def test_the_wait_ends_at_the_first_read_that_lists_the_node_alive():
    table = Table(alive_at=4)
    assert wait_until_registered(table, "opts", "n1") is True
    assert table.reads == 4 and table.options == "opts" and table.disconnected


def test_a_node_never_listed_is_left_to_rays_own_wait_after_the_timeout():
    table = Table(alive_at=None)
    assert wait_until_registered(table, "opts", "n1", timeout_s=0.05) is False
    assert table.reads > 1 and table.disconnected


def test_a_table_that_cannot_be_read_is_left_to_rays_own_wait_at_once():
    table = Table(error=RuntimeError("another Ray's internals"))
    assert wait_until_registered(table, "opts", "n1") is None
    assert table.reads == 1 and table.disconnected


def test_a_node_never_registered_raises_in_rays_loop_instead_of_waiting_again(monkeypatch):
    """Ray's loop around its wait catches RuntimeError and raises its own error once its 30 s are over: the
    poll's timeout must not add Ray's own 30 s of waiting after it."""
    from ray._private import services

    calls = []
    monkeypatch.setattr(local_ray, "NODE_WAIT_S", 0.05)
    monkeypatch.setattr("ray._private.state.GlobalState", Table(alive_at=None))
    monkeypatch.setattr(services, "_get_gcs_client_options", lambda address: address)
    monkeypatch.setattr(services, "get_node", lambda address, node: calls.append(node))
    with registration_polled(), pytest.raises(RuntimeError, match="did not register"):
        services.get_node("gcs:1", "n1")
    assert calls == []


def test_a_table_that_cannot_be_read_leaves_the_wait_to_ray(monkeypatch):
    from ray._private import services

    calls = []
    monkeypatch.setattr("ray._private.state.GlobalState", Table(error=RuntimeError("other internals")))
    monkeypatch.setattr(services, "_get_gcs_client_options", lambda address: address)
    monkeypatch.setattr(services, "get_node", lambda address, node: calls.append(node) or {})
    with registration_polled():
        assert services.get_node("gcs:1", "n1") == {}
    assert calls == ["n1"]


def test_without_rays_internals_nothing_is_replaced(monkeypatch):
    from ray._private import services

    original = services.get_node
    monkeypatch.delattr(services, "_get_gcs_client_options")
    with registration_polled():
        assert services.get_node is original
    assert services.get_node is original


def test_rays_wait_is_called_after_the_poll_and_put_back_after_the_start(monkeypatch):
    from ray._private import services

    table, calls = Table(alive_at=3), []
    monkeypatch.setattr("ray._private.state.GlobalState", table)
    monkeypatch.setattr(services, "_get_gcs_client_options", lambda address: f"options of {address}")
    monkeypatch.setattr(services, "get_node", lambda address, node: calls.append((address, node, table.reads)) or {})
    ray_wait = services.get_node
    with registration_polled():
        assert services.get_node("gcs:1", "n1") == {}
    assert calls == [("gcs:1", "n1", 3)] and table.options == "options of gcs:1"
    assert services.get_node is ray_wait
