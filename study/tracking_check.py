"""Is the MLflow store there, and is it one? Checked once before anything else, so a wrong or unreachable store
costs seconds, with a message naming it (the runner and the reports alike).

MLflow's HTTP client retries a refused connection 7 times with exponential back-off (over four minutes by
default); the driver first asks the server's ``/health`` with a short timeout, and lowers the client's
retries and timeouts for the rest of the run (the user's own ``MLFLOW_HTTP_REQUEST_*`` settings win). A URI
of no store MLflow writes to (a plain folder: MLflow's file store is in maintenance mode and refuses), a file
that is not a sqlite database, and an HTTP server that is not MLflow's are refused by name.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from urllib.parse import urlsplit

#: URI schemes of the stores MLflow tracks to (a database through SQLAlchemy, with an optional +driver, or a
#: tracking server).
STORE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")
SQLITE_HEADER = b"SQLite format 3\x00"

PROBE_TIMEOUT_S = 5.0
#: The driver's MLflow HTTP client: fewer retries, shorter timeouts (set unless the user set them).
CLIENT_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


class TrackingUnreachable(ConnectionError):
    """The tracking store is not there, or not an MLflow store; the message names its URI."""


def check_tracking_uri(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raises ``TrackingUnreachable`` when ``uri`` names no store MLflow tracks to, a sqlite file that is not a
    database, or an HTTP(S) server that does not answer within ``timeout_s`` or is not MLflow's (any MLflow
    answer, an authentication challenge included, counts as reachable)."""
    scheme = urlsplit(uri).scheme.split("+", 1)[0].lower()
    if scheme == "file" or (scheme == "" and os.path.isdir(uri)):
        raise TrackingUnreachable(
            f"--mlflow-uri {uri!r} is MLflow's file store (a plain folder), in maintenance mode since MLflow 3: "
            "this tool tracks to sqlite:///PATH.db, a tracking server or a database, whatever "
            "MLFLOW_ALLOW_FILE_STORE says; `mlflow migrate-filestore --source FOLDER --target sqlite:///mlflow.db` "
            "moves a folder's runs into a sqlite store"
        )
    if scheme not in STORE_SCHEMES:
        raise TrackingUnreachable(
            f"--mlflow-uri {uri!r} is no MLflow tracking store: give sqlite:///PATH.db (a file, made when new), "
            "http(s)://HOST:PORT (a tracking server) or a database URI (postgresql://...); MLflow no longer "
            "tracks to a plain folder (file:, ./mlruns)"
        )
    if scheme == "sqlite":
        _check_sqlite_file(uri)
    elif scheme in ("http", "https"):
        _check_server(uri, timeout_s)


def sqlite_file(uri: str) -> str | None:
    """The file of a ``sqlite:///`` URI (relative to the working directory when relative; options left out), or
    None for any other URI and an in-memory store."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").partition("?")[0]
    return path if path and path != ":memory:" else None


def missing_sqlite_store(uri: str) -> str | None:
    """The file of a sqlite URI that is not there (a reader must not create an empty store), else None."""
    path = sqlite_file(uri)
    return path if path is not None and not os.path.exists(path) else None


def _check_sqlite_file(uri: str) -> None:
    path = sqlite_file(uri)
    if path is None or not os.path.isfile(path) or os.path.getsize(path) == 0:
        return  # made when new (or in memory)
    with open(path, "rb") as f:
        header = f.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise TrackingUnreachable(f"--mlflow-uri {uri!r}: {path} is not a sqlite database (an MLflow store)")


def _check_server(uri: str, timeout_s: float) -> None:
    for key, value in CLIENT_SETTINGS.items():
        os.environ.setdefault(key, value)
    base = uri.rstrip("/")
    try:
        urllib.request.urlopen(base + "/health", timeout=timeout_s).close()
    except urllib.error.HTTPError as err:
        if err.code == 404 and not _answers_mlflow_api(base, timeout_s):
            raise TrackingUnreachable(
                f"{uri} answers, but is not an MLflow tracking server (HTTP 404 for /health and for MLflow's REST "
                "API); pass the tracking server's URI (mlflow server prints it)"
            ) from None
        return  # it answered
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise TrackingUnreachable(
            f"the MLflow tracking server {uri} does not answer ({reason}); start it, or pass another "
            "--mlflow-uri (a sqlite:///file.db store needs no server)"
        ) from None


def _answers_mlflow_api(base: str, timeout_s: float) -> bool:
    """Whether MLflow's REST API answers at ``base`` (an answer other than 404: an error of MLflow's counts)."""
    try:
        urllib.request.urlopen(base + "/api/2.0/mlflow/experiments/search?max_results=1", timeout=timeout_s).close()
    except urllib.error.HTTPError as err:
        return err.code != 404
    except (urllib.error.URLError, OSError):
        return False
    return True
