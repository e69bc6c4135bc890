"""The reports read every page of an MLflow search: the fixture store (21 trial runs) read in pages of two
(``study.mlflow_search.PAGE_SIZE``) gives what one page gives."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from reports.collect import read_runs
from reports.trained import qualifying_rows
from study import mlflow_search


def test_the_runs_read_in_pages_of_two_are_the_runs_read_at_once(fixture_store, monkeypatch):
    uri, spec = fixture_store
    whole = read_runs(spec.name, uri)
    rows = qualifying_rows(MlflowClient(uri), spec, lambda model: True)
    monkeypatch.setattr(mlflow_search, "PAGE_SIZE", 2)
    paged = read_runs(spec.name, uri)
    assert len(whole["records"]) > 2 * 2 and paged == whole
    assert qualifying_rows(MlflowClient(uri), spec, lambda model: True) == rows and len(rows) > 2
