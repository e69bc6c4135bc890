"""ResNet backbones with torchvision's parameter names and optional temporal parts in every block.

The EAN paper's "ResNet baseline" is a TSN ResNet-50 whose bottlenecks carry a motion excitation (ME)
and a depthwise temporal convolution initialised as a temporal shift, both between conv1 and the 3x3
conv2. Their parameters live under ``layerX.Y.me`` and ``layerX.Y.tconv``, so every key of a torchvision
ImageNet state dict loads unchanged (see ``ean.models.pretrained``).
"""

from __future__ import annotations

import torch
from torch import nn

from ean.models.motion_excitation import MotionExcitation
from ean.models.registries import BACKBONES
from ean.models.temporal import DepthwiseTemporalConv, TemporalShift

#: The ``temporal_conv`` value of TSM's fixed shift (the others: ``True``, the learned conv; ``False``, none).
SHIFT = "shift"


def check_temporal_conv(value: object) -> bool | str:
    """Returns ``value`` if it is ``True``, ``False`` or ``"shift"``; raises ``ValueError`` naming them otherwise."""
    if value is True or value is False or value == SHIFT:
        return value
    raise ValueError(f"temporal_conv = {value!r}; valid: true (learned, shift-initialised), false, {SHIFT!r} (TSM)")


def _temporal_parts(
    in_channels: int, width: int, num_segments: int, temporal_conv: bool | str, motion_excitation: bool
) -> dict[str, nn.Module]:
    """The temporal parts of one block: ``me`` and ``tconv`` (on ``width`` channels, before conv2) and ``shift``
    (on ``in_channels``, before conv1)."""
    parts: dict[str, nn.Module] = {}
    if motion_excitation:
        parts["me"] = MotionExcitation(width, num_segments)
    if temporal_conv == SHIFT:
        parts["shift"] = TemporalShift(in_channels, num_segments)
    elif temporal_conv:
        parts["tconv"] = DepthwiseTemporalConv(width, num_segments)
    return parts


def _residual_input(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The residual branch's input: ``x``, temporally shifted where the block has TSM's shift."""
    return x if block.shift is None else block.shift(x)


def _apply_temporal(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if block.me is not None:
        x = block.me(x)
    if block.tconv is not None:
        x = block.tconv(x)
    return x


def _downsample(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
    )


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (stride on the 3x3 conv) with ME and a temporal conv before conv2, or TSM's
    shift before conv1.

    Args:
        in_channels: C_in.
        width: the bottleneck's width (conv1's output channels).
        stride: the 3x3 conv's stride.
        num_segments: T.
        temporal: the block's temporal parts by name (``me``, ``tconv``, ``shift``; absent ones are None).

    Shapes: (N*T, C_in, H, W) -> (N*T, 4 * width, H / stride, W / stride).
    """

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int, num_segments: int, temporal: dict[str, nn.Module]):
        super().__init__()
        out_channels = width * self.expansion
        self.shift = temporal.get("shift")
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.me = temporal.get("me")
        self.tconv = temporal.get("tconv")
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(_residual_input(self, x))))
        out = _apply_temporal(self, out)
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class BasicBlock(nn.Module):
    """torchvision's BasicBlock with ME and a temporal conv between conv1 and conv2, or TSM's shift before conv1
    (as in the Bottleneck).

    Args:
        in_channels: C_in.
        width: the block's output channels.
        stride: conv1's stride.
        num_segments: T.
        temporal: the block's temporal parts by name (``me``, ``tconv``, ``shift``; absent ones are None).

    Shapes: (N*T, C_in, H, W) -> (N*T, width, H / stride, W / stride).
    """

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int, num_segments: int, temporal: dict[str, nn.Module]):
        super().__init__()
        self.shift = temporal.get("shift")
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.me = temporal.get("me")
        self.tconv = temporal.get("tconv")
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(_residual_input(self, x))))
        out = _apply_temporal(self, out)
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A ResNet trunk without its classifier, exposing its five stages (the paper's Conv1 and Stage 2-5).

    Stage 1 is the stem (conv1, bn1, relu, maxpool); stages 2-5 are ``layer1`` ... ``layer4``.

    Args:
        block: ``Bottleneck`` or ``BasicBlock``.
        layers: blocks per stage 2-5.
        num_segments: T.
        temporal_conv: ``True``: the shift-initialised depthwise temporal conv in every block; ``False``: none;
            ``"shift"``: TSM's fixed shift in every block (module docstring).
        motion_excitation: add ME to every block.

    Shapes: ``stem`` (N*T, 3, H, W) -> (N*T, 64, H/4, W/4); ``layerK`` halves H and W (layer1 keeps them).
    """

    def __init__(
        self, block: type, layers: list[int], num_segments: int, temporal_conv: bool | str, motion_excitation: bool
    ):
        super().__init__()
        check_temporal_conv(temporal_conv)
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels, widths = 64, (64, 128, 256, 512)
        for index, (width, count) in enumerate(zip(widths, layers, strict=True)):
            blocks = []
            for i in range(count):
                stride = 2 if (i == 0 and index > 0) else 1
                temporal = _temporal_parts(channels, width, num_segments, temporal_conv, motion_excitation)
                blocks.append(block(channels, width, stride, num_segments, temporal))
                channels = width * block.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
        self.stage_channels = [64] + [w * block.expansion for w in widths]
        self._init_weights()

    def _init_weights(self) -> None:
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv2d) and not name.endswith(("me.neighbour", "me.squeeze", "me.expand")):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stages(self) -> list[nn.Module]:
        """The five stages in order: stem, layer1, layer2, layer3, layer4."""
        stem = nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool)
        return [stem, self.layer1, self.layer2, self.layer3, self.layer4]

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """(N*T, 3, H, W) -> (N*T, 64, H/4, W/4)."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N*T, 3, H, W) -> (N*T, C5, H/32, W/32)."""
        x = self.forward_stem(x)
        for k in range(1, 5):
            x = getattr(self, f"layer{k}")(x)
        return x


@BACKBONES.register("resnet50")
def resnet50(num_segments: int, temporal_conv: bool | str = True, motion_excitation: bool = True) -> ResNet:
    """ResNet-50 (stage channels 64, 256, 512, 1024, 2048)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_segments, temporal_conv, motion_excitation)


@BACKBONES.register("resnet101")
def resnet101(num_segments: int, temporal_conv: bool | str = True, motion_excitation: bool = True) -> ResNet:
    """ResNet-101 (stage channels 64, 256, 512, 1024, 2048)."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_segments, temporal_conv, motion_excitation)


@BACKBONES.register("resnet18")
def resnet18(num_segments: int, temporal_conv: bool | str = True, motion_excitation: bool = True) -> ResNet:
    """ResNet-18 (stage channels 64, 64, 128, 256, 512): small, for smoke runs and tests."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_segments, temporal_conv, motion_excitation)
