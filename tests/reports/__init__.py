"""Tests of the reports package (MLflow -> tables and figures)."""
