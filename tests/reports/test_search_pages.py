"""The reports read every page of an MLflow search: the fixture store (21 trial runs) answering pages of two
(``tests.mlflow_pages``) gives what it gives in one page."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from reports.collect import read_runs
from reports.trained import qualifying_rows


def test_the_runs_read_in_pages_of_two_are_the_runs_read_at_once(fixture_store, request):
    uri, spec = fixture_store
    whole = read_runs(spec.name, uri)
    rows = qualifying_rows(MlflowClient(uri), spec, lambda model: True)
    request.getfixturevalue("pages_of_two")
    paged = read_runs(spec.name, uri)
    assert len(whole["records"]) > 2 * 2 and paged == whole
    assert qualifying_rows(MlflowClient(uri), spec, lambda model: True) == rows and len(rows) > 2
