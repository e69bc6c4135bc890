"""The project's study specs, shared profiles and Hydra config groups: data only, installed as ``ean_studies``.

Nothing here is code; ``study.locations`` finds this folder (``importlib``), wherever it was installed.
"""
