"""Region strategies: where the SOI-Tr's object tokens come from."""

from ean.models.soi.regions import all_positions, fasterrcnn, fixed, none, saliency  # noqa: F401
