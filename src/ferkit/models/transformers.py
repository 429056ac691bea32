"""Small transformers trained from scratch on 48 px faces, with readable attention maps.

* ``vit_tiny``: a Vision Transformer on the whole face (6 px patches -> 64 tokens + class token).
* ``landmark_transformer``: tokens are patches cut around landmark regions (eyes, brows, mouth, nose, cheeks,
  forehead; slightly enlarged, placed from the alignment template or given per image), plus optionally the
  cells of a small CNN's feature map; class token, learned positional (token identity) embeddings.

Every attention block stores its last attention matrix ``(B, heads, T, T)`` in ``attn`` when
``keep_attn`` is set (see :func:`ferkit.explain.rollout`).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import FERNet, conv_bn
from .regions import EXTRA_REGIONS, LANDMARK_REGIONS, crop_regions, region_table
from .registry import register_model


class Attention(nn.Module):
    """Multi-head self-attention with explicit matmuls so the weights can be read out."""

    def __init__(self, dim: int, heads: int, drop: float = 0.0) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(drop)
        self.keep_attn = False
        self.attn: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        if self.keep_attn:
            self.attn = a.detach()
        out = (self.drop(a) @ v).transpose(1, 2).reshape(b, t, d)
        return self.proj(out)


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0, drop: float = 0.1) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, drop)
        self.norm2 = nn.LayerNorm(dim)
        hid = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hid), nn.GELU(), nn.Dropout(drop), nn.Linear(hid, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _TransformerHead(nn.Module):
    """Class token + positional embeddings + blocks + norm + linear head (shared by both models)."""

    def __init__(self, n_tokens: int, dim: int, depth: int, heads: int, num_classes: int, drop: float) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n_tokens + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, drop=drop) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], 1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 0]

    def attention_maps(self) -> list[torch.Tensor]:
        return [b.attn.attn for b in self.blocks if b.attn.attn is not None]

    def keep_attention(self, on: bool = True) -> None:
        for b in self.blocks:
            b.attn.keep_attn = on
            if not on:
                b.attn.attn = None


class ViT(nn.Module):
    """Vision Transformer for ``size`` px faces, ``patch`` px patches."""

    def __init__(self, num_classes: int = 8, in_chans: int = 1, size: int = 48, patch: int = 6, dim: int = 96,
                 depth: int = 4, heads: int = 4, drop: float = 0.1) -> None:
        super().__init__()
        self.grid = size // patch
        self.embed = nn.Conv2d(in_chans, dim, patch, patch)
        self.tf = _TransformerHead(self.grid**2, dim, depth, heads, num_classes, drop)
        self.fc = nn.Linear(dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.tf.encode(self.embed(x).flatten(2).transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


class LandmarkTransformer(nn.Module):
    """Landmark-patch tokens (+ optional CNN feature-map tokens) through a transformer encoder."""

    def __init__(self, num_classes: int = 8, in_chans: int = 1, patch: int = 16, dim: int = 96, depth: int = 4,
                 heads: int = 4, regions: list[str] | None = None, cnn_tokens: bool = True,
                 drop: float = 0.1) -> None:
        super().__init__()
        self.region_names = list(regions or [*LANDMARK_REGIONS, *EXTRA_REGIONS])
        self.register_buffer("boxes", region_table(self.region_names), persistent=False)
        self.patch = patch
        # Patch embedding: a tiny conv stem per patch (shared), then a linear map to the token width.
        self.patch_embed = nn.Sequential(conv_bn(in_chans, 16, 3, 2), conv_bn(16, 32, 3, 2), nn.Flatten(),
                                         nn.Linear(32 * (patch // 4) ** 2, dim))
        self.cnn: nn.Module | None = None
        n_cnn = 0
        if cnn_tokens:  # 48 -> 6x6 feature map of `dim` channels = 36 tokens
            self.cnn = nn.Sequential(conv_bn(in_chans, 24, 3, 2), conv_bn(24, 48, 3, 2), conv_bn(48, dim, 3, 2))
            n_cnn = 36
        self.n_region_tokens, self.n_cnn_tokens = len(self.region_names), n_cnn
        self.tf = _TransformerHead(len(self.region_names) + n_cnn, dim, depth, heads, num_classes, drop)
        self.fc = nn.Linear(dim, num_classes)

    @property
    def token_names(self) -> list[str]:
        return ["cls", *self.region_names, *[f"cnn_{i}" for i in range(self.n_cnn_tokens)]]

    def tokens(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        b = x.shape[0]
        crops = crop_regions(x, self.boxes if boxes is None else boxes, self.patch)
        r = crops.shape[1]
        tok = self.patch_embed(crops.reshape(b * r, *crops.shape[2:])).reshape(b, r, -1)
        if self.cnn is not None:
            fm = nn.functional.interpolate(x, size=(48, 48), mode="bilinear", align_corners=False)
            tok = torch.cat([tok, self.cnn(fm).flatten(2).transpose(1, 2)], 1)
        return tok

    def forward_features(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        return self.tf.encode(self.tokens(x, boxes))

    def forward(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc(self.forward_features(x, boxes))


@register_model
def vit_tiny(num_classes: int = 8, in_chans: int = 1, input_size: int = 48, patch: int = 6, dim: int = 96,
             depth: int = 4, heads: int = 4, **_: object) -> FERNet:
    """Small ViT from scratch (6 px patches, 64 tokens, width 96, 4 blocks x 4 heads)."""
    return FERNet(ViT(num_classes, in_chans, input_size, patch, dim, depth, heads), in_chans=in_chans,
                  backbone_chans=in_chans, input_size=input_size)


@register_model
def landmark_transformer(num_classes: int = 8, in_chans: int = 1, input_size: int = 48, dim: int = 96,
                         depth: int = 4, heads: int = 4, cnn_tokens: bool = True, **_: object) -> FERNet:
    """Landmark-patch transformer: 8 region tokens (eyes, brows, mouth, nose, cheeks, forehead) + 36 CNN tokens."""
    return FERNet(LandmarkTransformer(num_classes, in_chans, 16, dim, depth, heads, cnn_tokens=cnn_tokens),
                  in_chans=in_chans, backbone_chans=in_chans, input_size=input_size)
