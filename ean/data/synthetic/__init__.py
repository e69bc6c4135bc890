"""Synthetic videos of templated actions in Something-Something V2's format (see ``generate``)."""

from ean.data.synthetic.generate import generate_synthetic, write_mp4
from ean.data.synthetic.scenes import TEMPLATES

__all__ = ["TEMPLATES", "generate_synthetic", "write_mp4"]
