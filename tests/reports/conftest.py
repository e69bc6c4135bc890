"""One real MLflow sqlite store with the fixture study's runs, shared by the reports tests (read only)."""

from __future__ import annotations

import pytest

from tests.reports.mlflow_fixture import write_fixture_store


@pytest.fixture(scope="session")
def fixture_store(tmp_path_factory):
    """(tracking URI, spec) of a store written once per session; tests must not write to it."""
    return write_fixture_store(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(scope="session")
def fixture_report(fixture_store, tmp_path_factory):
    """The full report (tables in every format, figures) of the fixture study, made once per session."""
    from reports.make import make_report

    uri, spec = fixture_store
    out = tmp_path_factory.mktemp("report")
    return make_report(spec, out=out, tracking_uri=uri, generated="2025-01-01 00:00 UTC"), out
