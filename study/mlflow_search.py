"""Every match of an MLflow search, page by page.

``MlflowClient.search_runs`` returns at most ``max_results`` runs (1000 by default, 50000 at most) and a page
token for the rest; a search that reads only the first page misses the rest silently: a study whose store
holds more runs than that would train a cached trial again. The runner and the reports search through these.
"""

from __future__ import annotations

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
    runs: dict[str, Any] = {}
    token = None
    while True:
        page = client.search_runs(
            experiment_ids, filter_string, max_results=PAGE_SIZE, order_by=order_by, page_token=token
        )
        for run in page:
            runs.setdefault(run.info.run_id, run)
        token = page.token
        if not token:
            return list(runs.values())


def all_experiments(client) -> list[Any]:
    """Every active experiment of the store."""
    experiments: dict[str, Any] = {}
    token = None
    while True:
        page = client.search_experiments(max_results=PAGE_SIZE, page_token=token)
        for experiment in page:
            experiments.setdefault(experiment.experiment_id, experiment)
        token = page.token
        if not token:
            return list(experiments.values())
