"""Every match of an MLflow search, page by page.

``MlflowClient.search_runs`` returns at most ``max_results`` runs (1000 by default, 50000 at most) and a page
token for the rest; a search that reads only the first page misses the rest silently: a study whose store
holds more runs than that would train a cached trial again. The runner and the reports search through these.
"""

from __future__ import annotations

from typing import Any

#: Runs (experiments) asked per page; a module constant so that tests can make pages of two.
PAGE_SIZE = 5000


def all_runs(
    client, experiment_ids: list[str], filter_string: str = "", order_by: list[str] | None = None
) -> list[Any]:
    """Every active run of these experiments that matches ``filter_string``, in ``order_by`` order.

    Args:
        client: an ``mlflow.tracking.MlflowClient``.
        experiment_ids: at most 100 experiment ids (MLflow's limit for one search).
        filter_string: an MLflow search filter ("" for all runs).
        order_by: MLflow ``order_by`` clauses, e.g. ``["attributes.start_time DESC"]``.
    """
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            experiment_ids, filter_string, max_results=PAGE_SIZE, order_by=order_by, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def all_experiments(client) -> list[Any]:
    """Every active experiment of the store."""
    experiments: list[Any] = []
    token = None
    while True:
        page = client.search_experiments(max_results=PAGE_SIZE, page_token=token)
        experiments.extend(page)
        token = page.token
        if not token:
            return experiments
