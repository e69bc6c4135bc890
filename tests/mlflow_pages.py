"""A sqlite MLflow store that answers every search a page of two at most (and a token for the rest), as a
large store answers a search with MLflow's most (50000): a search that reads only its first page misses runs."""

from __future__ import annotations

from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

PAGE = 2


def answer_pages_of_two(monkeypatch) -> None:
    """Caps ``max_results`` of the sqlite store's run and experiment searches at ``PAGE``."""
    search_runs, search_experiments = SqlAlchemyStore._search_runs, SqlAlchemyStore._search_experiments

    def runs(self, experiment_ids, filter_string, run_view_type, max_results, order_by, page_token):
        return search_runs(self, experiment_ids, filter_string, run_view_type, min(max_results, PAGE), order_by,
                           page_token)  # fmt: skip

    def experiments(self, view_type, max_results, filter_string, order_by, page_token):
        return search_experiments(self, view_type, min(max_results, PAGE), filter_string, order_by, page_token)

    monkeypatch.setattr(SqlAlchemyStore, "_search_runs", runs)
    monkeypatch.setattr(SqlAlchemyStore, "_search_experiments", experiments)
