"""EAN model parts behind registries, and the builder that composes them from a plain config."""

from ean.models.build import (
    MODEL_DEFAULTS,
    ModelConfigError,
    build_model,
    check_model_config,
    frames_per_segment,
    resolve_model_config,
)
from ean.models.ean_net import EAN
from ean.models.identity import network_identity
from ean.models.registries import BACKBONES, BLOCKS, FUSIONS, MOTIONS, REGIONS

__all__ = [
    "BACKBONES",
    "BLOCKS",
    "EAN",
    "FUSIONS",
    "MODEL_DEFAULTS",
    "MOTIONS",
    "REGIONS",
    "ModelConfigError",
    "build_model",
    "check_model_config",
    "frames_per_segment",
    "network_identity",
    "resolve_model_config",
]
