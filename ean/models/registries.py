"""The registries of the model's swappable families, each stating the contract its variants meet.

Feature maps inside the network use the TSN layout ``(N*T, C, H, W)``: N clips of T segments stacked on
the batch axis; a part that mixes time reshapes internally with ``num_segments``.
"""

from ean.models.fusion.base import Fusion
from ean.registry import Registry

BACKBONES = Registry(
    "backbone",
    contract="backbone(temporal_conv: bool | 'shift', motion_excitation: bool, num_segments: int) -> ResNet; "
    "torchvision parameter names; stem (N*T, 3, H, W) -> (N*T, C1, H/4, W/4), stage k halves H, W.",
    required_args=("temporal_conv", "motion_excitation", "num_segments"),
)

BLOCKS = Registry(
    "block",
    contract="block(channels: int, num_segments: int, **options) -> nn.Module or None (no block); "
    "(N*T, C, H, W) -> (N*T, C, H, W), a residual block that starts close to the identity.",
    required_args=("channels", "num_segments"),
)

FUSIONS = Registry(
    "fusion",
    contract="fusion(channels: int, num_segments: int) -> Fusion; forward(x, context) with x, context "
    "(N*T, C, H, W) -> (N*T, C, H, W): mixes channels by a matrix M (C x C) per clip; "
    "matrix(context) -> (N, C, C) or None for a fixed permutation/identity.",
    required_args=("channels", "num_segments"),
    base=Fusion,
)

REGIONS = Registry(
    "regions",
    contract="regions(channels: int, num_segments: int, num_regions: int, **options) -> nn.Module or None "
    "(no SOI-Tr); forward(features (N, D, T, H, W): the stage's features squeezed to D = channels / 4 with "
    "the positional embedding added, clip (N*T, 3, Hin, Win): the normalised frames the RGB path sees, clip "
    "n's segment t at row n*T + t) -> weights (N, T, R, H, W), each map summing to 1 over H, W (or None: "
    "every position is a token).",
    required_args=("channels", "num_segments", "num_regions"),
)

MOTIONS = Registry(
    "motion",
    contract="motion(frames_per_segment: int, out_channels: int, **options) -> nn.Module; the L frames of each "
    "segment (M, L, 3, H, W), M = N*T -> a motion map (M, out_channels, H/4, W/4) added to the stem's output, "
    "close to zero at initialisation. The class states FRAMES_PER_SEGMENT (L), and may state "
    "input_multiple(**options) -> int, a size the crops must be multiples of.",
    required_args=("frames_per_segment", "out_channels"),
)
