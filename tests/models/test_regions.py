"""The SOI-Tr's regions as geometry: every strategy's contract, and boxes landing where they are on the grid.

Frames and grids here are not square and boxes not symmetric, so that a swapped x and y, height and width, or
clip and segment axis shows.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ean.models.identity import network_identity
from ean.models.registries import REGIONS
from ean.models.soi.regions.fasterrcnn import FasterRCNNRegions
from ean.models.soi.regions.masks import box_masks, central_box

N, T, D = 2, 2, 16  # clips, segments, the SOI-Tr's width
GRID = (4, 8)  # (h, w) of the feature map
FRAME = (40, 80)  # (H, W) of the frames: 10 x 10 pixels a cell


@pytest.mark.parametrize("name", REGIONS.names())
def test_every_region_strategy_gives_maps_that_each_sum_to_one_over_the_frame(name):
    torch.manual_seed(0)
    options = {"min_size": 40} if name == "fasterrcnn" else {}
    module = REGIONS.build(name, channels=4 * D, num_segments=T, num_regions=4, **options)
    if module is None:  # no SOI-Tr at all
        return
    weights = module(torch.randn(N, D, T, *GRID), torch.rand(N * T, 3, *FRAME) * 4 - 2)
    if weights is None:  # every position is a token
        return
    assert weights.shape == (N, T, 4, *GRID)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=(-2, -1)), torch.ones(N, T, 4))


def test_a_box_covers_the_cells_whose_centres_it_holds_in_x_and_in_y():
    masks = box_masks(torch.tensor([[0.0, 0.0, 30.0, 20.0]]), FRAME, GRID)[0]  # 3 cells wide, 2 high
    expected = torch.zeros(GRID)
    expected[:2, :3] = 1 / 6
    torch.testing.assert_close(masks, expected)


def test_the_central_region_is_the_middle_half_of_each_side():
    assert central_box(FRAME).tolist() == [20.0, 10.0, 60.0, 30.0]  # (x1, y1, x2, y2) of a 40 x 80 frame


class ScoredBoxes(nn.Module):
    """A detector that finds, in frame i, a box one cell wide at column i (score 0.9), a box at the right edge
    (0.6) and one at the left (0.3): torchvision's output, best first."""

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        out = []
        for image in images:
            i = int(round(float(image[0, 0, 0]) * 10))  # the frame's index, written into its first pixel
            boxes = [[10.0 * i, 0.0, 10.0 * i + 10, 10.0], [70.0, 30.0, 80.0, 40.0], [0.0, 30.0, 10.0, 40.0]]
            out.append({"boxes": torch.tensor(boxes), "scores": torch.tensor([0.9, 0.6, 0.3])})
        return out


def test_detected_boxes_land_on_their_own_frame_best_first_and_pad_with_the_centre():
    regions = FasterRCNNRegions(4 * D, T, num_regions=3, score_threshold=0.5, min_size=40)
    regions.detector = ScoredBoxes()
    images = torch.zeros(N * T, 3, *FRAME)
    images[:, 0, 0, 0] = torch.arange(N * T) / 10  # frame i of the batch (clip i // T, segment i % T)
    clip = (images - regions.mean) / regions.std  # normalised, as the network sees frames
    weights = regions(torch.randn(N, D, T, *GRID), clip)  # (N, T, R, h, w)
    for i in range(N * T):
        n, t = divmod(i, T)
        assert weights[n, t, 0, 0, i] == 1.0 and weights[n, t, 0].sum() == 1.0  # the 0.9 box: its column i
        assert weights[n, t, 1, 3, 7] == 1.0  # then the 0.6 box, bottom right
        torch.testing.assert_close(weights[n, t, 2, 1:3, 2:6], torch.full((2, 4), 1 / 8))  # 0.3 is below 0.5


@pytest.mark.parametrize("damage", ["empty", "truncated", "shape", "nan"])
def test_a_cached_box_file_that_cannot_be_read_is_found_again_and_rewritten(tmp_path, damage, caplog):
    regions = FasterRCNNRegions(4 * D, T, num_regions=3, score_threshold=0.5, min_size=40, cache_dir=str(tmp_path))
    regions.detector = ScoredBoxes()
    regions.eval()
    images = torch.zeros(1, 3, *FRAME)
    images[0, 0, 0, 0] = 0.2
    clip = (images - regions.mean) / regions.std
    found = regions.boxes(clip)
    (path,) = tmp_path.rglob("*.pt")
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    else:
        torch.save(torch.zeros(2, 4) if damage == "shape" else torch.full((3, 4), float("nan")), path)
    torch.testing.assert_close(regions.boxes(clip), found)
    assert str(path) in caplog.text and "finding them again" in caplog.text
    torch.testing.assert_close(torch.load(path, weights_only=True), found[0].cpu())


def test_frames_or_boxes_that_are_not_finite_are_refused_by_name():
    regions = FasterRCNNRegions(4 * D, T, num_regions=3, min_size=40)
    frames = torch.zeros(3, 3, *FRAME)
    frames[1, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match=r"frame\(s\) \[1\] of this batch hold NaN"):
        regions.boxes(frames)
    with pytest.raises(ValueError, match=r"1 box\(es\) with NaN or infinite coordinates"):
        box_masks(torch.tensor([[0.0, 0.0, 10.0, 10.0], [float("nan"), 0.0, 10.0, 10.0]]), FRAME, GRID)


def test_a_score_threshold_below_torchvisions_floor_lowers_the_floor():
    low = FasterRCNNRegions(4 * D, T, num_regions=3, score_threshold=0.01, min_size=40)
    usual = FasterRCNNRegions(4 * D, T, num_regions=3, score_threshold=0.5, min_size=40)
    assert low.detector.roi_heads.score_thresh == 0.01 and usual.detector.roi_heads.score_thresh == 0.05
    model = {"regions": "fasterrcnn", "region_options": {"score_threshold": 0.01}}
    assert network_identity(model)["sois"]["options"]["score_floor"] == "threshold"  # computed otherwise since
    model["region_options"]["score_threshold"] = 0.05
    assert "score_floor" not in network_identity(model)["sois"]["options"]  # as every key made before


def test_torchvisions_coco_file_given_by_path_builds_torchvisions_detector_and_is_named_so(tmp_path, monkeypatch):
    """torchvision builds its COCO detector with FrozenBatchNorm2d of eps 0 (the weights were trained so); the same
    file given by path (a machine without network) must find the same boxes and name the same network."""
    from torchvision.models import resnet50
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection._utils import overwrite_eps
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops import FrozenBatchNorm2d

    from ean.models.identity import _region_options
    from ean.models.pretrained import file_sha256
    from ean.models.soi.regions import fasterrcnn

    torch.manual_seed(0)
    kwargs = {"min_size": 64, "max_size": 64, "rpn_pre_nms_top_n_test": 10, "rpn_post_nms_top_n_test": 10}
    reference = FasterRCNN(_resnet_fpn_extractor(resnet50(norm_layer=FrozenBatchNorm2d), 3), 91, **kwargs)
    for module in reference.modules():  # statistics of their own, so that eps and the buffers show
        if isinstance(module, FrozenBatchNorm2d):
            module.running_var.uniform_(0.5, 1.0)
            module.running_mean.uniform_(-0.1, 0.1)
    path = tmp_path / "fasterrcnn_resnet50_fpn_coco-0000.pth"
    torch.save(reference.state_dict(), path)
    overwrite_eps(reference, 0.0)
    other = tmp_path / "mine.pth"
    torch.save(reference.state_dict(), other)
    monkeypatch.setattr(fasterrcnn, "torchvision_coco_hash", lambda: file_sha256(path)[:8])

    detector = fasterrcnn.build_detector(str(path), 64, 10)
    frozen = [m for m in detector.modules() if isinstance(m, FrozenBatchNorm2d)]
    assert frozen and all(m.eps == 0.0 for m in frozen)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in detector.modules())
    image = torch.rand(1, 3, 64, 64)
    unfrozen = fasterrcnn.build_detector(str(other), 64, 10)  # BatchNorm2d in eval, eps 1e-5
    for level, features in reference.eval().backbone(image).items():
        assert torch.isfinite(features).all() and torch.equal(detector.backbone(image)[level], features)
        assert not torch.equal(unfrozen.backbone(image)[level], features)
    assert _region_options("fasterrcnn", {"weights": str(path)}) == {"weights": "torchvision"}
    assert _region_options("fasterrcnn", {"weights": str(other)})["weights"].startswith(
        "sha256:"
    )  # a detector of one's own
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in unfrozen.modules())
