"""study: the contract between the study runner (``runners``) and the reports (``reports``).

- ``study.spec``: the study spec (its loader and validation, ``spec_hash``);
- ``study.find``: finding a study file by path or by name;
- ``study.policy``: "specs are data" (no code references, no resolvers, no Hydra settings), one rule for spec
  files, command-line overrides and composed configs;
- ``study.mlflow_schema``: every MLflow name the runner writes and the reports read (tags, metrics,
  artifacts, statuses, run names, the protocol tag, the default tracking URI).
- ``study.mlflow_search``: MLflow searches read to their last page (runs, experiments).

Imports neither ``runners`` nor ``reports`` (nor torch): both layers build on it.
"""
