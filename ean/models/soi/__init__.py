"""SOI-Tr and its object-region strategies (Table 7): none, fixed, fasterrcnn, all, saliency."""

from ean.models.soi import regions  # noqa: F401  (register the variants)
from ean.models.soi.soi_tr import SOITransformer

__all__ = ["SOITransformer"]
