"""Is the MLflow store there? Checked once before anything else, so an unreachable server costs seconds.

MLflow's HTTP client retries a refused connection 7 times with exponential back-off (over four minutes by
default); the driver first asks the server's ``/health`` with a short timeout, and lowers the client's
retries and timeouts for the rest of the run (the user's own ``MLFLOW_HTTP_REQUEST_*`` settings win).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

PROBE_TIMEOUT_S = 5.0
#: The driver's MLflow HTTP client: fewer retries, shorter timeouts (set unless the user set them).
CLIENT_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


class TrackingUnreachable(ConnectionError):
    """The tracking server does not answer; the message names its URI."""


def check_tracking_uri(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raises ``TrackingUnreachable`` when ``uri`` is an HTTP(S) server that does not answer within
    ``timeout_s`` (any HTTP answer, an authentication challenge included, counts as reachable)."""
    if not uri.startswith(("http://", "https://")):
        return
    for key, value in CLIENT_SETTINGS.items():
        os.environ.setdefault(key, value)
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s).close()
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise TrackingUnreachable(
            f"the MLflow tracking server {uri} does not answer ({reason}); start it, or pass another "
            "--mlflow-uri (a sqlite:///file.db store needs no server)"
        ) from None
