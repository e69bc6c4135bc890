"""Model parts against reference implementations: temporal convs, regions, LMC, SOI-Tr."""

import pytest
import torch
from torch import nn

from ean.models.lmc import LatentMotionCode
from ean.models.soi.regions.fasterrcnn import FasterRCNNRegions
from ean.models.soi.regions.fixed import FixedRegions, grid_boxes
from ean.models.soi.regions.masks import box_masks
from ean.models.temporal import DepthwiseTemporalConv, TemporalConv


def to_clips(x: torch.Tensor, t: int) -> torch.Tensor:
    nt, c, h, w = x.shape
    return x.view(nt // t, t, c, h, w).transpose(1, 2)


def test_temporal_conv_equals_conv3d():
    torch.manual_seed(0)
    for groups, dilation in [(1, 1), (1, 2), (2, 1)]:
        conv = TemporalConv(6, 4, num_segments=5, kernel_size=3, dilation=dilation, groups=groups)
        ref = nn.Conv3d(6, 4, (3, 1, 1), padding=(dilation, 0, 0), dilation=(dilation, 1, 1), groups=groups, bias=False)
        with torch.no_grad():
            ref.weight.copy_(conv.conv.weight.unsqueeze(-1))  # (C_out, C_in/g, k, 1) -> (..., k, 1, 1)
        x = torch.randn(10, 6, 3, 3)
        expected = ref(to_clips(x, 5)).transpose(1, 2).reshape(10, 4, 3, 3)
        torch.testing.assert_close(conv(x), expected)


def test_depthwise_temporal_conv_starts_as_a_temporal_shift():
    conv = DepthwiseTemporalConv(16, num_segments=4)
    x = torch.randn(8, 16, 2, 2)
    y = conv(x).view(2, 4, 16, 2, 2)
    clips = x.view(2, 4, 16, 2, 2)
    torch.testing.assert_close(y[:, :-1, :2], clips[:, 1:, :2])  # 1/8 from the next frame
    assert y[:, -1, :2].abs().sum() == 0
    torch.testing.assert_close(y[:, 1:, 2:4], clips[:, :-1, 2:4])  # 1/8 from the previous frame
    torch.testing.assert_close(y[:, :, 4:], clips[:, :, 4:])


def test_box_masks_cover_the_box_and_sum_to_one():
    masks = box_masks(torch.tensor([[0.0, 0.0, 32.0, 32.0], [40.0, 40.0, 41.0, 41.0]]), (64, 64), (4, 4))
    torch.testing.assert_close(masks.sum(dim=(-2, -1)), torch.ones(2))
    assert (masks[0, :2, :2] == 0.25).all() and masks[0, 2:].sum() == 0
    assert masks[1, 2, 2] == 1.0  # a box smaller than a cell takes its nearest cell


def test_fixed_regions_tile_the_frame():
    boxes = grid_boxes(4, (8, 8))
    assert boxes.tolist() == [[0, 0, 4, 4], [4, 0, 8, 4], [0, 4, 4, 8], [4, 4, 8, 8]]
    weights = FixedRegions(64, 4, 4)(torch.randn(2, 16, 4, 8, 8))
    assert weights.shape == (2, 4, 4, 8, 8)
    torch.testing.assert_close(weights.sum(dim=(-2, -1)), torch.ones(2, 4, 4))


def test_fasterrcnn_regions_pad_with_the_centre_and_cache_boxes(tmp_path):
    torch.manual_seed(0)
    regions = FasterRCNNRegions(2048, 2, num_regions=3, score_threshold=2.0, min_size=64, cache_dir=str(tmp_path))
    regions.train()
    assert not regions.detector.training and not any(p.requires_grad for p in regions.parameters())
    clip = torch.randn(4, 3, 64, 64)
    boxes = regions.boxes(clip)
    assert boxes.shape == (4, 3, 4)
    assert boxes.eq(torch.tensor([16.0, 16.0, 48.0, 48.0])).all()  # nothing scores 2.0: all central
    assert not list(tmp_path.rglob("*.pt"))  # training frames (new crops each epoch) are not cached
    regions.eval()
    torch.testing.assert_close(regions.boxes(clip), boxes)
    assert len(list(tmp_path.rglob("*.pt"))) == 4
    regions.detector = None  # a second call must come from the cache alone
    torch.testing.assert_close(regions.boxes(clip), boxes)
    weights = regions(torch.randn(2, 16, 2, 4, 4), clip)
    assert weights.shape == (2, 2, 3, 4, 4)
    assert (weights[..., 1:3, 1:3] == 0.25).all()  # the central region of a 4 x 4 grid


def test_trials_sharing_a_box_cache_never_read_another_detectors_boxes(tmp_path):
    """Two random detectors (two seeds) and another score threshold, one ``cache_dir``: each gets the boxes its
    own detector finds, and a second detector of the same weights and options reads the first's."""
    clip = torch.rand(2, 3, 64, 64) * 4 - 2

    def regions(seed: int, threshold: float = 0.0, cache: bool = True) -> FasterRCNNRegions:
        torch.manual_seed(seed)
        cache_dir = str(tmp_path) if cache else None
        module = FasterRCNNRegions(2048, 2, num_regions=3, score_threshold=threshold, min_size=64, cache_dir=cache_dir)
        return module.eval()

    own = {seed: regions(seed, cache=False).boxes(clip) for seed in (0, 1)}
    assert not torch.equal(own[0], own[1]), "the two random detectors find other boxes on these frames"
    for seed in (0, 1):
        torch.testing.assert_close(regions(seed).boxes(clip), own[seed])
    central = regions(0, threshold=2.0).boxes(clip)
    assert central.eq(torch.tensor([16.0, 16.0, 48.0, 48.0])).all()  # not seed 0's cached boxes at 0.0
    again = regions(1)
    again.detector = None  # the same detector and options: from the cache alone
    torch.testing.assert_close(again.boxes(clip), own[1])


@pytest.mark.parametrize(
    "options",
    [{}, {"downsample": 1, "patch": 32, "latent": 128}],  # the authors' code; the paper's text (full resolution)
    ids=["authors_code", "paper_text"],
)
def test_lmc_maps_segments_to_the_stem_resolution(options):
    lmc = LatentMotionCode(**options)
    x = torch.randn(3, 5, 3, 64, 64)
    out = lmc(x)
    assert out.shape == (3, 64, 16, 16)
    still = lmc(torch.ones(3, 5, 3, 64, 64))  # no motion: the code of zero differences, same everywhere
    torch.testing.assert_close(still[0], still[1])


def test_the_papers_lmc_builds_in_a_whole_network_and_differs_in_size():
    from ean.profile import profile_model

    authors = profile_model({"modality": "rgb_lmc", "backbone": "resnet18", "input_size": 64, "num_segments": 2})
    paper = profile_model(
        {
            "modality": "rgb_lmc",
            "backbone": "resnet18",
            "input_size": 64,
            "num_segments": 2,
            "motion_options": {"downsample": 1, "patch": 32, "latent": 128},
        }
    )
    assert paper.params < authors.params  # a 128-wide code instead of 256


def test_an_lmc_patch_that_does_not_decode_to_the_stem_grid_is_refused():
    with pytest.raises(ValueError, match="multiple of 4"):
        LatentMotionCode(patch=5, downsample=1)


def test_a_box_cache_keeps_the_boxes_of_each_precision_apart(tmp_path):
    """Under a bf16 autocast the detector finds other boxes than in float32: a trial of either precision reads
    only boxes found in its own."""
    torch.manual_seed(0)
    regions = FasterRCNNRegions(2048, 2, num_regions=3, score_threshold=0.0, min_size=64, cache_dir=str(tmp_path))
    regions.eval()
    clip = torch.rand(2, 3, 64, 64) * 4 - 2
    fp32 = regions.boxes(clip)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = regions.boxes(clip)
    assert sorted(p.name for p in regions.cache_dir.iterdir()) == ["cpu-bfloat16", "cpu-float32"]
    assert len(list(tmp_path.rglob("*.pt"))) == 4 and not list(tmp_path.rglob(".*"))
    regions.detector = None  # from the cache alone, each precision its own boxes
    torch.testing.assert_close(regions.boxes(clip), fp32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(regions.boxes(clip), bf16)


def test_counting_a_detector_reads_no_weights_and_writes_no_boxes():
    from ean.profile import without_weights

    options = {"weights": "torchvision", "cache_dir": "/boxes", "min_size": 64}
    model = {"regions": "fasterrcnn", "region_options": options}
    assert without_weights(model)["region_options"] == {"weights": None, "cache_dir": None, "min_size": 64}
    assert without_weights({"regions": "saliency"}).get("region_options") is None
