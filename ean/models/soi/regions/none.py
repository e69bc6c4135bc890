"""No regions: the network has no SOI-Tr (Table 7, first row)."""

from ean.models.registries import REGIONS


@REGIONS.register("none")
def no_regions(channels: int, num_segments: int, num_regions: int) -> None:
    """Builds nothing; the model builder then inserts no SOI-Tr."""
    return None
