"""Regions from torchvision's Faster R-CNN, run frozen on the sampled frames (Table 7, 'Faster RCNN').

The detector sees each frame (un-normalised to [0, 1]); its R most confident boxes become uniform weight
maps on the feature grid; frames with fewer than R boxes are padded with the central region. In evaluation
(the test views are the same pixels every time) boxes can be cached on disk by the frame's content hash, so
another evaluation of the same frames does not run the detector again. Training frames are not cached: each
epoch crops and flips them anew, so their pixels rarely repeat (one video drew 64 different crops and flips
in 70 epochs), and a cache would write a file per frame and epoch. The cache is kept apart per detector (a
digest of its weights, of the options that decide the boxes, of torchvision's version and of how boxes are
chosen here) and per precision (a bf16 autocast finds other boxes than float32), so trials with other weights,
seeds (a random detector), thresholds or precisions that share a ``cache_dir`` never read each other's. A
cached file that cannot be read is found again by the detector and written anew (with a warning).
"""

from __future__ import annotations

import hashlib
import json
import logging
from importlib.metadata import version
from pathlib import Path

import torch
from torch import nn

from ean.constants import IMAGENET_MEAN, IMAGENET_STD
from ean.files_read import note
from ean.files_write import atomic_path
from ean.models.registries import REGIONS
from ean.models.soi.regions.masks import box_masks, central_box

log = logging.getLogger(__name__)

#: How boxes are chosen from a detection (``_select``) and stored; bump it when that changes, so that cached
#: boxes of the old rule are not read as the new rule's.
BOX_RULE = 1
#: torchvision's own floor on detection scores (``roi_heads.score_thresh``): a lower threshold lowers it.
TORCHVISION_SCORE_FLOOR = 0.05


def detector_file(weights: str | None) -> Path | None:
    """The file the detector's weights are read from (``None``: random weights): torch's hub cache for
    ``"torchvision"`` (torchvision's COCO weights), else the path.

    Raises:
        PretrainedWeightsError: the file is not there; the message says where it goes and how to get it.
    """
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    from ean.models.pretrained import PretrainedWeightsError

    if weights is None:
        return None
    if weights == "torchvision":
        url = FasterRCNN_ResNet50_FPN_Weights.DEFAULT.url
        path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
        note(path)
        if not path.is_file():
            raise PretrainedWeightsError(
                f"model.region_options.weights = 'torchvision' needs torchvision's COCO Faster R-CNN weights at "
                f"{path}; download {url} there on a machine with network (torchvision does on first use), or set "
                "model.region_options.weights=PATH to a state dict, or null for a random detector (tests only)"
            )
        return path
    path = Path(weights).expanduser()
    note(path)
    if not path.is_file():
        raise PretrainedWeightsError(f"model.region_options.weights: Faster R-CNN weights file not found: {path}")
    return path


def torchvision_coco_hash() -> str:
    """The sha256 prefix of torchvision's COCO Faster R-CNN file (in its name, as torch's hub has it)."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    from ean.models.pretrained import hub_hash_prefix

    return hub_hash_prefix(FasterRCNN_ResNet50_FPN_Weights.DEFAULT.url)


def is_torchvision_coco(weights: str | None) -> bool:
    """Whether ``weights`` names torchvision's COCO weights: ``"torchvision"``, or a file holding them (given by
    path, e.g. on a machine without network): one detector, one identity, the same boxes."""
    if weights == "torchvision":
        return True
    if not weights or not Path(weights).expanduser().is_file():
        return False
    from ean.models.pretrained import file_sha256

    return file_sha256(Path(weights).expanduser()).startswith(torchvision_coco_hash())


def build_detector(
    weights: str | None, min_size: int, proposals: int, score_threshold: float = TORCHVISION_SCORE_FLOOR
) -> nn.Module:
    """torchvision's fasterrcnn_resnet50_fpn in eval mode with frozen parameters.

    Args:
        weights: None (random: tests), ``"torchvision"`` (COCO weights, downloaded once) or a file path.
        min_size: the detector's input size (frames are resized so the short side is this).
        proposals: RPN proposals kept after NMS at test time (the box head's cost grows with it).
        score_threshold: the lowest score asked for: below torchvision's floor (0.05) the floor follows it.
    """
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights, fasterrcnn_resnet50_fpn

    tv_weights = FasterRCNN_ResNet50_FPN_Weights.DEFAULT if weights == "torchvision" else None
    detector = fasterrcnn_resnet50_fpn(
        weights=tv_weights,
        weights_backbone=None,
        min_size=min_size,
        max_size=min_size,
        rpn_post_nms_top_n_test=proposals,
        rpn_pre_nms_top_n_test=proposals,
        box_score_thresh=min(TORCHVISION_SCORE_FLOOR, score_threshold),
    )
    if weights not in (None, "torchvision"):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"Faster R-CNN weights file not found: {path}")
        detector.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        if is_torchvision_coco(weights):  # as torchvision builds it for these weights: the boxes of "torchvision"
            _freeze_batchnorm(detector, eps=0.0)
    detector.eval()
    for p in detector.parameters():
        p.requires_grad_(False)
    return detector


@REGIONS.register("fasterrcnn")
class FasterRCNNRegions(nn.Module):
    """R detected boxes per frame, padded with the central region, as weight maps.

    Args:
        channels, num_segments: the stage's (unused beyond the contract).
        num_regions: R.
        weights: detector weights (see ``build_detector``).
        score_threshold: boxes below this score are dropped (below 0.05, torchvision's own floor moves with it).
        min_size: detector input size (None: the frames' own size).
        proposals: RPN proposals at test time.
        cache_dir: directory for cached boxes, one folder per detector (None: no cache); read and written in
            evaluation only (``eval()``).

    Shapes: features (N, D, T, h, w), clip (N*T, 3, H, W) normalised -> weights (N, T, R, h, w).
    """

    def __init__(
        self,
        channels: int,
        num_segments: int,
        num_regions: int = 4,
        weights: str | None = None,
        score_threshold: float = 0.5,
        min_size: int | None = None,
        proposals: int = 100,
        cache_dir: str | None = None,
    ):
        super().__init__()
        self.num_regions, self.score_threshold = num_regions, score_threshold
        self.min_size = min_size
        self.detector = build_detector(weights, min_size or 224, proposals, score_threshold)
        self.cache_dir = Path(cache_dir) / self._identity(proposals) if cache_dir else None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> FasterRCNNRegions:
        super().train(mode)
        self.detector.eval()  # frozen: always in inference mode
        return self

    def _identity(self, proposals: int) -> str:
        """A digest of what decides the boxes besides the frame: the detector's weights, the options, torchvision
        (its detector's code) and the rule that chooses boxes here (``BOX_RULE``)."""
        decides = [self.num_regions, self.score_threshold, self.min_size, proposals, version("torchvision"), BOX_RULE]
        digest = hashlib.sha1(json.dumps(decides).encode())
        for name, tensor in sorted(self.detector.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return f"detector-{digest.hexdigest()[:16]}"

    def _cache_path(self, frame: torch.Tensor) -> Path:
        """The frame's file, in the folder of the precision the detector runs in on the frame's device (under a
        bf16 autocast it finds other boxes than in float32)."""
        digest = hashlib.sha1(frame.to(torch.float16).cpu().numpy().tobytes())
        digest.update(str(tuple(frame.shape)).encode())
        name = digest.hexdigest()
        return self.cache_dir / _precision(frame.device.type) / name[:2] / f"{name}.pt"

    @staticmethod
    def file_problems(weights: str | None = None, **_: object) -> list[str]:
        """What the detector's weights need on this machine and lack (checked when a study is planned)."""
        from ean.models.pretrained import PretrainedWeightsError

        try:
            detector_file(weights)
        except PretrainedWeightsError as err:
            return [str(err)]
        return []

    @torch.no_grad()
    def boxes(self, frames: torch.Tensor) -> torch.Tensor:
        """(F, 3, H, W) normalised frames -> (F, R, 4) boxes in pixels, padded with the central region.

        Raises:
            ValueError: the frames hold values that are not finite (a NaN from the data or an earlier layer),
                on which the detector finds no boxes.
        """
        if not torch.isfinite(frames).all():
            bad = (~torch.isfinite(frames.flatten(1))).any(dim=1).nonzero().flatten().tolist()
            raise ValueError(f"Faster R-CNN regions: frame(s) {bad} of this batch hold NaN or infinite values")
        images = (frames.float() * self.std + self.mean).clamp(0, 1)
        cached = [self._load(img) for img in images]
        todo = [i for i, b in enumerate(cached) if b is None]
        if todo:
            if self.min_size is None:  # detect at the frames' own size
                self.detector.transform.min_size = (min(images.shape[-2:]),)
                self.detector.transform.max_size = max(images.shape[-2:])
            detections = self.detector([images[i] for i in todo])
            for i, det in zip(todo, detections, strict=True):
                cached[i] = self._select(det, images.shape[-2:])
                self._store(images[i], cached[i])
        return torch.stack(cached).to(frames.device)

    def _select(self, det: dict, size: tuple[int, int]) -> torch.Tensor:
        keep = det["boxes"][det["scores"] >= self.score_threshold][: self.num_regions].cpu()
        pad = central_box(tuple(size)).expand(self.num_regions - len(keep), 4)
        return torch.cat([keep, pad])

    def _caches(self) -> bool:
        """Whether boxes go through the disk cache: with a ``cache_dir``, in evaluation only (see the module)."""
        return self.cache_dir is not None and not self.training

    def _load(self, image: torch.Tensor) -> torch.Tensor | None:
        """The cached boxes of a frame, or None: none cached, or a file that is not R finite boxes (then found
        again and written anew)."""
        if not self._caches():
            return None
        path = self._cache_path(image)
        if not path.is_file():
            return None
        try:
            boxes = torch.load(path, weights_only=True)
            if not isinstance(boxes, torch.Tensor) or boxes.shape != (self.num_regions, 4):
                raise ValueError(f"holds {getattr(boxes, 'shape', type(boxes).__name__)}, not ({self.num_regions}, 4)")
            if not torch.isfinite(boxes).all():
                raise ValueError("holds boxes that are not finite")
        except Exception as err:  # noqa: BLE001  any unreadable file: the detector finds the boxes again
            log.warning("cached boxes %s cannot be read (%s: %s); finding them again", path, type(err).__name__, err)
            return None
        return boxes

    def _store(self, image: torch.Tensor, boxes: torch.Tensor) -> None:
        if not self._caches():
            return
        with atomic_path(self._cache_path(image)) as tmp:
            torch.save(boxes, tmp)

    def forward(self, features: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
        n, _, t, h, w = features.shape
        boxes = self.boxes(clip)  # (N*T, R, 4)
        masks = box_masks(boxes, tuple(clip.shape[-2:]), (h, w))
        return masks.view(n, t, self.num_regions, h, w)


def _freeze_batchnorm(module: nn.Module, eps: float) -> None:
    """Replaces each BatchNorm2d by torchvision's FrozenBatchNorm2d with the same statistics and ``eps``, as
    torchvision builds its detector for trained weights (its COCO weights were trained with eps 0)."""
    from torchvision.ops import FrozenBatchNorm2d

    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=eps)
            for buffer in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, buffer).copy_(getattr(child, buffer).detach())
            setattr(module, name, frozen)
        else:
            _freeze_batchnorm(child, eps)


def _precision(device_type: str) -> str:
    """``"<device type>-<dtype>"`` of the computation on that device here: the autocast's dtype when one is on."""
    dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else torch.float32
    return f"{device_type}-{str(dtype).removeprefix('torch.')}"
