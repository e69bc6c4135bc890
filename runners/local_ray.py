"""The settings of a local Ray, applied before ``ray`` is first imported (Ray reads them at import).

Token authentication is asked for explicitly (Ray 2.60 turns it on by default for local clusters, older
versions did not), and every server of the local cluster is bound to the loopback interface: Ray binds a
node's servers to its node IP, which is the loopback one only when Ray is told this machine is not part of a
cluster. Ray's usage statistics (the report Ray sends its authors) are off for the local Ray a study
starts: with them on, its start took a second longer here (ray.init 3.9 -> 2.9 s on 2 cores). The user's
own environment wins (``RAY_USAGE_STATS_ENABLED=1`` turns them back on).

The raylet connects to its object store, which it starts in a thread of its own, through Ray's socket-connect
retry, which sleeps ``raylet_client_connect_timeout_milliseconds`` (1000) between attempts: where the store was
not listening yet at the first attempt (about one start in four on 2 cores here), ``ray.init`` took a whole second
longer. The local Ray retries every 50 ms instead, with 20 times the attempts, so it waits as long in all before
it gives up (10 s; the same retry serves a worker connecting to its raylet).

Then ``ray.init`` waits for the raylet to register with the GCS (which it does once its dashboard agent is up,
about 1.2 s after its start on 2 cores) by asking the GCS through a call that sleeps a whole second between
tries: the start went on up to a second after the raylet was ready, with the CPU idle (a study's first step
came that much later). The local Ray a study starts polls the GCS's node table every 20 ms first
(``registration_polled``), so Ray's own wait finds the node at its first try.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)

CONNECT_RETRY_MS, CONNECT_ATTEMPTS = 50, 200  # Ray's defaults: 1000 ms, 10 attempts
LOCAL_RAY_ENV = {
    "RAY_AUTH_MODE": "token",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_raylet_client_connect_timeout_milliseconds": str(CONNECT_RETRY_MS),
    "RAY_raylet_client_num_connect_attempts": str(CONNECT_ATTEMPTS),
}
LOOPBACK = "127.0.0.1"
NODE_POLL_S = 0.02  # how often the node table is asked while the raylet registers
NODE_WAIT_S = 30.0  # as long as Ray's own wait for the raylet (raylet_start_wait_time_s)
_SWAP = threading.Lock()  # one start at a time replaces Ray's wait (and puts it back)


def use_local_ray_settings() -> bool:
    """Sets ``LOCAL_RAY_ENV`` (where unset) for this process and its children; returns whether they hold.

    Only before ``ray`` is imported: set later, the driver and the cluster it starts would disagree about
    authentication, so then Ray's defaults are kept, with a warning.
    """
    missing = {k: v for k, v in LOCAL_RAY_ENV.items() if k not in os.environ}
    if missing and "ray" in sys.modules:
        log.warning("ray was imported before the local Ray's settings %s could be set; Ray's defaults apply", missing)
        return False
    os.environ.update(missing)
    return True


class RayUnreachable(ConnectionError):
    """``--address`` names no Ray cluster this machine reaches."""


def cluster_problem(address: str | None, timeout_s: float = 5.0) -> str | None:
    """Why ``--address HOST:PORT`` cannot be joined (None when it may be, or is ``auto``, which Ray looks up):
    nothing answers there within ``timeout_s`` (Ray itself would retry for minutes)."""
    if not address or address.strip().lower() == "auto" or "://" in address:
        return None
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit():
        return f"--address {address} is not HOST:PORT (e.g. 10.0.0.1:6379) or auto"
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        return (
            f"--address {address}: no Ray cluster answers there ({err}). Start one with `ray start --head` on "
            "that machine, or leave --address out for a local Ray"
        )
    return None


def start_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Joins the cluster at ``address``, or starts a local Ray sized to this machine, reachable from it only
    (``runners.local_ray``: its settings must be in the environment before ``ray`` is imported).

    Raises:
        RayUnreachable: ``address`` names no cluster Ray can join.
    """
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if address:
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except ConnectionError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise RayUnreachable(
                f"--address {address}: {first.rstrip('.')}. Start a cluster with `ray start --head`, or leave "
                "--address out for a local Ray"
            ) from None
        return
    with registration_polled():
        ray.init(
            address="local",  # a Ray of its own, also where `ray start --head` runs one on this machine
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            logging_level=logging.WARNING,
            _node_ip_address=LOOPBACK,
        )
    atexit.register(stop_ray)  # before Ray's own exit handler, which waits 0.5 s for log lines first


@contextlib.contextmanager
def registration_polled() -> Iterator[None]:
    """While a local Ray starts: Ray's wait for the raylet's registration (``ray._private.services.get_node``,
    which sleeps 1 s between its tries) is called only once the GCS's node table lists the node alive, polled
    every ``NODE_POLL_S``. Where this Ray lacks those internals, or the table cannot be read, Ray waits as its
    own code does."""
    try:
        from ray._private import services
        from ray._private.state import GlobalState

        ray_wait, client_options = services.get_node, services._get_gcs_client_options
    except (ImportError, AttributeError):
        yield
        return

    def get_node(gcs_address: str, node_id: str):
        if wait_until_registered(GlobalState, client_options(gcs_address), node_id) is False:
            # Ray's loop around this call raises its own error once its wait is over (as long as this one)
            raise RuntimeError(f"the raylet of node {node_id} did not register within {NODE_WAIT_S:.0f} s")
        return ray_wait(gcs_address, node_id)

    with _SWAP:
        services.get_node = get_node
        try:
            yield
        finally:
            services.get_node = ray_wait


def wait_until_registered(state_type, options, node_id: str, timeout_s: float | None = None) -> bool | None:
    """Polls the GCS's node table until node ``node_id`` is in it alive: True once it is, False when
    ``timeout_s`` (default ``NODE_WAIT_S``) passed without it, None where the table cannot be read (Ray's own
    wait then decides)."""
    state = state_type()
    deadline = time.monotonic() + (NODE_WAIT_S if timeout_s is None else timeout_s)
    try:
        state._initialize_global_state(options)
        while time.monotonic() < deadline:
            if any(node.get("NodeID") == node_id and node.get("Alive") for node in state.node_table()):
                return True
            time.sleep(NODE_POLL_S)
        return False
    except Exception as error:  # noqa: BLE001 - a Ray whose internals differ: its own wait still holds
        log.debug("the node table could not be read (%s); Ray's own wait for the raylet decides", error)
        return None
    finally:
        with contextlib.suppress(Exception):
            state.disconnect()


def stop_ray() -> None:
    """Ends this driver's Ray: a local cluster stops with its trials' processes; on a joined cluster the
    driver's actors (the trials) are killed. At the driver's exit this runs before Ray's own exit handler,
    which first waits 0.5 s for the workers' last log lines (a trial's outcome is in MLflow, its whole log in
    Ray's session folder)."""
    import ray

    if ray.is_initialized():
        stop_autoscaler_monitor()
        ray.shutdown()


def stop_autoscaler_monitor() -> bool:
    """Kills the autoscaler monitor of the local Ray this driver started (none on a joined cluster); returns
    whether it did.

    ``ray.shutdown`` stops the GCS before the monitor, whose SIGTERM handler then reports its end to the GCS
    and hangs until Ray kills it a second later: every study's exit waited that second, the CPU idle. A local
    cluster's monitor scales nothing and keeps no state, so it is killed outright, first.
    """
    try:
        from ray._private import ray_constants, worker

        node = worker._global_node
        if node is None or not node.head:
            return False
        monitors = node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, [])
    except (ImportError, AttributeError):  # a Ray whose internals differ: its own shutdown order holds
        return False
    killed = False
    for info in monitors:
        process = info.process
        if process.poll() is None:
            process.kill()
            with contextlib.suppress(Exception):
                process.wait(timeout=5)
            killed = True
    return killed
