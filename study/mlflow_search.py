"""Every match of an MLflow search, page by page.

``MlflowClient.search_runs`` returns at most ``max_results`` runs (1000 by default, 50000 at most) and a page
token for the rest; a search that reads only the first page misses the rest silently: a study whose store
holds more runs than that would train a cached trial again. The runner and the reports search through these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Runs (experiments) asked per page: MLflow's most, so that a store of up to that many is read in one query.
PAGE_SIZE = 50000


def all_runs(
    client, experiment_ids: list[str], filter_string: str = "", order_by: list[str] | None = None
) -> list[Any]:
    """Every active run of these experiments that matches ``filter_string``, in ``order_by`` order, each once
    (a page token is an offset: a run that another driver finished while the pages were read moves the rest by
    one, so a run can come on two pages).

    Args:
        client: an ``mlflow.tracking.MlflowClient``.
        experiment_ids: at most 100 experiment ids (MLflow's limit for one search).
        filter_string: an MLflow search filter ("" for all runs).
        order_by: MLflow ``order_by`` clauses, e.g. ``["attributes.start_time DESC"]``.
    """
    return _every(
        lambda token: client.search_runs(
            experiment_ids, filter_string, max_results=PAGE_SIZE, order_by=order_by, page_token=token
        ),
        lambda run: run.info.run_id,
    )


def all_experiments(client) -> list[Any]:
    """Every active experiment of the store."""
    return _every(
        lambda token: client.search_experiments(max_results=PAGE_SIZE, page_token=token),
        lambda experiment: experiment.experiment_id,
    )


def _every(search: Callable[[str | None], Any], identity: Callable[[Any], str]) -> list[Any]:
    """What ``search`` (a page token -> a page with ``.token``) finds on all its pages, each item once."""
    found: dict[str, Any] = {}
    token = None
    while True:
        page = search(token)
        for item in page:
            found.setdefault(identity(item), item)
        token = page.token
        if not token:
            return list(found.values())
