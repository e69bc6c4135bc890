"""No spatial-temporal block (the rows 'ResNet baseline' and 'Only SOI-Tr')."""

from ean.models.registries import BLOCKS


@BLOCKS.register("none")
def no_block(channels: int, num_segments: int) -> None:
    """Inserts nothing: the backbone stage is followed directly by the next one."""
    return None
