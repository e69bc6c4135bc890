"""Boxes to normalised weight maps on a feature grid."""

from __future__ import annotations

import torch


def box_masks(boxes: torch.Tensor, image_size: tuple[int, int], grid: tuple[int, int]) -> torch.Tensor:
    """Uniform weight maps over the grid cells whose centres lie inside each box.

    Args:
        boxes: (..., 4) as (x1, y1, x2, y2) in pixels of an image of ``image_size`` = (H, W).
        image_size: (H, W) of the image the boxes refer to.
        grid: (h, w) of the feature map.

    Returns:
        (..., h, w) maps, each summing to 1; a box that covers no cell centre takes its nearest cell.

    Raises:
        ValueError: a box with a coordinate that is not finite (it covers nothing and has no nearest cell).
    """
    if not torch.isfinite(boxes).all():
        raise ValueError(
            f"box_masks: {int((~torch.isfinite(boxes)).any(-1).sum())} box(es) with NaN or infinite coordinates"
        )
    height, width = image_size
    h, w = grid
    ys = (torch.arange(h, device=boxes.device, dtype=torch.float32) + 0.5) * height / h
    xs = (torch.arange(w, device=boxes.device, dtype=torch.float32) + 0.5) * width / w
    x1, y1, x2, y2 = (boxes[..., i, None, None].float() for i in range(4))
    inside = (xs >= x1) & (xs <= x2) & (ys[:, None] >= y1) & (ys[:, None] <= y2)
    masks = inside.float()
    empty = masks.flatten(-2).sum(-1) == 0
    if empty.any():
        cy = ((y1 + y2) / 2 * h / height).floor().clamp(0, h - 1).long().squeeze(-1).squeeze(-1)
        cx = ((x1 + x2) / 2 * w / width).floor().clamp(0, w - 1).long().squeeze(-1).squeeze(-1)
        nearest = torch.zeros_like(masks)
        flat = nearest.flatten(-2)
        flat.scatter_(-1, (cy * w + cx).unsqueeze(-1), 1.0)
        masks = torch.where(empty[..., None, None], flat.view_as(masks), masks)
    return masks / masks.flatten(-2).sum(-1)[..., None, None]


def central_box(image_size: tuple[int, int], fraction: float = 0.5) -> torch.Tensor:
    """The box (x1, y1, x2, y2) covering the central ``fraction`` of each side of the image."""
    height, width = image_size
    mh, mw = height * (1 - fraction) / 2, width * (1 - fraction) / 2
    return torch.tensor([mw, mh, width - mw, height - mh])
