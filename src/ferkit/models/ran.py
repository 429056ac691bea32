"""Region Attention Network (Wang et al. 2020, "Region Attention Networks for Pose and Occlusion Robust
Facial Expression Recognition"), sized for 48 px faces.

The face and ``R`` region crops (fixed corner/centre crops and landmark crops: eyes, brows, mouth, placed from
the alignment template or given per image) go through one shared CNN. Self-attention: ``mu_i = sigmoid(fc(f_i))``;
relation attention on ``[f_i : f_m]`` where ``f_m`` is the ``mu``-weighted mean feature:
``nu_i = sigmoid(fc([f_i : f_m]))``; the fused feature is ``sum(mu_i nu_i [f_i : f_m]) / sum(mu_i nu_i)``.
Region-biased loss: the largest region weight must beat the whole face's by a margin,
``max(0, margin - (max_i mu_i - mu_face))``; it is set as ``extra_loss`` in training mode for the trainer.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import FERNet, conv_bn
from .regions import FIXED_REGIONS, LANDMARK_REGIONS, crop_regions, region_table
from .registry import register_model


def region_biased_loss(mu: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """RB loss on self-attention weights ``mu`` ``(B, 1 + R)`` (column 0 = whole face), mean over the batch."""
    return torch.relu(margin - (mu[:, 1:].max(dim=1).values - mu[:, 0])).mean()


class SmallCNN(nn.Module):
    """Shared region backbone: 4 conv stages with pooling, global average pooling to ``width * 4`` features."""

    def __init__(self, in_chans: int = 1, width: int = 32) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            conv_bn(in_chans, w), nn.MaxPool2d(2),
            conv_bn(w, 2 * w), nn.MaxPool2d(2),
            conv_bn(2 * w, 4 * w), conv_bn(4 * w, 4 * w), nn.MaxPool2d(2),
            conv_bn(4 * w, 4 * w),
        )
        self.dim = 4 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))


class RAN(nn.Module):
    """RAN backbone for :class:`FERNet`; ``last_weights`` holds ``(mu, nu)`` of the last forward pass."""

    def __init__(self, num_classes: int = 8, in_chans: int = 1, width: int = 32, crop_size: int = 32,
                 regions: list[str] | None = None, margin: float = 0.1, rb_weight: float = 1.0,
                 drop: float = 0.3, placement: str = "template") -> None:
        super().__init__()
        if placement not in ("template", "mesh"):
            raise ValueError(f"placement must be 'template' or 'mesh', got {placement!r}")
        #: ``mesh``: landmark crops are placed per image (``forward(x, boxes)``; the trainer, evaluation and the
        #: pipeline pass boxes from the 468-point mesh); ``template``: fixed template boxes.
        self.wants_boxes = placement == "mesh"
        self.region_names = list(regions or [*FIXED_REGIONS, *LANDMARK_REGIONS])
        self.register_buffer("boxes", region_table(self.region_names), persistent=False)
        self.crop_size = crop_size
        self.margin, self.rb_weight = margin, rb_weight
        self.cnn = SmallCNN(in_chans, width)
        d = self.cnn.dim
        self.alpha = nn.Linear(d, 1)
        self.beta = nn.Linear(2 * d, 1)
        self.drop = nn.Dropout(drop)
        self.fc = nn.Linear(2 * d, num_classes)
        self.extra_loss: torch.Tensor | None = None
        self.last_weights: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def names(self) -> list[str]:
        return ["face", *self.region_names]

    def region_features(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 1 + R, d)`` features of the face and its crops."""
        b = x.shape[0]
        crops = crop_regions(x, self.boxes if boxes is None else boxes, self.crop_size)
        r = crops.shape[1]
        face = nn.functional.interpolate(x, size=(self.crop_size, self.crop_size), mode="bilinear",
                                         align_corners=False)
        allx = torch.cat([face.unsqueeze(1), crops], 1).reshape(b * (r + 1), x.shape[1], self.crop_size,
                                                                self.crop_size)
        return self.cnn(allx).reshape(b, r + 1, -1)

    def fuse(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Self + relation attention fusion: returns ``(P, mu, nu)``."""
        mu = torch.sigmoid(self.alpha(f)).squeeze(-1)  # (B, 1+R)
        fm = (mu.unsqueeze(-1) * f).sum(1) / mu.sum(1, keepdim=True)
        cat = torch.cat([f, fm.unsqueeze(1).expand_as(f)], -1)
        nu = torch.sigmoid(self.beta(cat)).squeeze(-1)
        w = mu * nu
        p = (w.unsqueeze(-1) * cat).sum(1) / w.sum(1, keepdim=True)
        return p, mu, nu

    def forward_features(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        p, mu, nu = self.fuse(self.region_features(x, boxes))
        self.last_weights = (mu.detach(), nu.detach())
        self.extra_loss = self.rb_weight * region_biased_loss(mu, self.margin) if self.training else None
        return p

    def forward(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc(self.drop(self.forward_features(x, boxes)))


@register_model
def ran(num_classes: int = 8, in_chans: int = 1, input_size: int = 48, width: int = 24, crop_size: int = 24,
        margin: float = 0.1, rb_weight: float = 1.0, placement: str = "template", **_: object) -> FERNet:
    """Region Attention Network: face + 5 fixed crops + 4 landmark crops (eyes, brows, mouth) placed from the
    alignment template (``placement="template"``) or per image by the face mesh (``placement="mesh"``)."""
    return FERNet(RAN(num_classes, in_chans, width, crop_size, margin=margin, rb_weight=rb_weight,
                      placement=placement),
                  in_chans=in_chans, backbone_chans=in_chans, input_size=input_size)
