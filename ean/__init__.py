"""ean: the PyTorch library of the EAN ablation framework (registries, model parts, data, training, profiling).

Imports torch, torchvision and decord; never ray, mlflow or hydra.
"""

from ean.registry import Registry

__all__ = ["Registry"]
__version__ = "0.4.3"
