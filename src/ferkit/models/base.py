"""Shared model plumbing: every ferkit network takes grey (or RGB) faces in [0, 1] at the
dataset's native size (48x48 for FER2013) and does its own resizing and normalisation, so the
exported ONNX file needs nothing but ``pixels / 255``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FERNet(nn.Module):
    """Wraps a backbone with input handling.

    Args:
        backbone: module mapping ``(B, backbone_chans, input_size, input_size)`` to logits.
        in_chans: channels of the images fed to the model (1 = grey, 3 = RGB).
        backbone_chans: channels the backbone expects; grey input is repeated to 3 when needed.
        input_size: side length the backbone runs at; inputs of another size are resized bilinearly.
        mean, std: normalisation applied after scaling to [0, 1].
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        in_chans: int = 1,
        backbone_chans: int = 1,
        input_size: int = 48,
        mean: float = 0.5,
        std: float = 0.5,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.in_chans = in_chans
        self.backbone_chans = backbone_chans
        self.input_size = input_size
        self.mean = mean
        self.std = std

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        if x.shape[1] == 1 and self.backbone_chans == 3:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] == 3 and self.backbone_chans == 1:
            x = (0.299 * x[:, 2:3] + 0.587 * x[:, 1:2] + 0.114 * x[:, 0:1])  # BGR -> grey
        return (x - self.mean) / self.std

    @property
    def wants_boxes(self) -> bool:
        """True for models whose region crops are placed per image (``forward(x, boxes)``, e.g. by the mesh)."""
        return bool(getattr(self.backbone, "wants_boxes", False))

    def forward(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        if boxes is None:
            return self.backbone(self.prepare(x))
        return self.backbone(self.prepare(x), boxes)

    def features(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        """Penultimate features (used for embeddings); backbones expose ``forward_features``."""
        if boxes is None:
            return self.backbone.forward_features(self.prepare(x))
        return self.backbone.forward_features(self.prepare(x), boxes)


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)
