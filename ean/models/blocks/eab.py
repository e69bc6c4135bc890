"""Event Adaptive Block (Sec. 3.1, Fig. 3) and its detail variants (Table 10)."""

from ean.models.blocks.st_block import SpatialTemporalBlock
from ean.models.blocks.stages import Branch
from ean.models.registries import BLOCKS, FUSIONS

FACTORIZATIONS = ("2+1", "1+1+1")


def multi_scale_branches(dilation: bool) -> list[Branch]:
    """Kernels 1, 3 and 5 (the 5 as a dilated 3 unless ``dilation`` is off)."""
    return [(1, 1), (3, 1), (3, 2) if dilation else (5, 1)]


@BLOCKS.register("eab")
def eab(
    channels: int,
    num_segments: int,
    fusion: str = "dynamic",
    pool: str = "max",
    inter_relu: bool = True,
    dilation: bool = True,
    factorization: str = "2+1",
    fusion_options: dict | None = None,
) -> SpatialTemporalBlock:
    """The EAB: multi-scale temporal and spatial branches related by the fusion matrix M.

    Args:
        channels: C.
        num_segments: T.
        fusion: a ``FUSIONS`` name: ``dynamic`` (ESP-Net, the EAB), ``static``, ``shuffle``, ``identity``.
        pool: pooling branch ``max``, ``avg`` or ``none``.
        inter_relu: ReLU between the temporal and spatial stages.
        dilation: kernel 5 as a dilated 3 (else a real 5).
        factorization: ``"2+1"`` or ``"1+1+1"`` (spatial k x k as k x 1 then 1 x k).
        fusion_options: keyword arguments of the fusion (``dynamic``: ``identity_init``).

    Shapes: (N*T, C, H, W) -> (N*T, C, H, W).
    """
    if factorization not in FACTORIZATIONS:
        raise ValueError(f"factorization must be one of {', '.join(FACTORIZATIONS)}; got {factorization!r}")
    branches = multi_scale_branches(dilation)
    mixer = FUSIONS.build(fusion, channels=channels // 4, num_segments=num_segments, **(fusion_options or {}))
    return SpatialTemporalBlock(
        channels,
        num_segments,
        branches,
        branches,
        mixer,
        pool=pool,
        inter_relu=inter_relu,
        factorized=factorization == "1+1+1",
    )
