"""FER+ label schemes (Barsoum et al. 2016) and class weighting, as losses over vote matrices.

``targets`` is always ``(B, K)`` non-negative votes (one-hot rows for single-label data).

* ``mv``  majority vote: cross-entropy with the class that has more than half of the votes; images without
          such a majority are left out of the loss (as in the paper's reference code).
* ``ml``  multi-label: every class with at least ``ml_threshold`` of the (8 emotion) votes is acceptable;
          the loss is ``-log max_{k acceptable} p_k`` (the network may put its mass on any of them); images
          with no acceptable class are left out.
* ``pld`` probabilistic label drawing: each step draws one label from the vote distribution.
* ``cel`` cross-entropy against the whole vote distribution.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SCHEMES = ("mv", "ml", "pld", "cel")


def normalise_votes(targets: torch.Tensor, drop_single: bool = False) -> torch.Tensor:
    """Votes -> distribution. ``drop_single`` removes classes with a single vote when others have more
    (FER+'s outlier removal)."""
    t = targets.float()
    if drop_single:
        if bool(((t > 0) & (t < 1)).any()):
            raise ValueError("drop_single needs raw vote counts, not probabilities (e.g. blended soft targets)")
        cleaned = torch.where(t <= 1, torch.zeros_like(t), t)
        ok = cleaned.sum(1, keepdim=True) > 0
        t = torch.where(ok, cleaned, t)
    return t / t.sum(1, keepdim=True).clamp_min(1e-8)


def class_weights(counts: np.ndarray, power: float = 1.0, cap: float = 10.0) -> np.ndarray:
    """Inverse-frequency weights ``(n / (K * count))**power``, capped, mean 1 over the samples."""
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    w = (counts.sum() / (len(counts) * counts)) ** power
    w = np.minimum(w, cap)
    w = w / (w * counts).sum() * counts.sum()
    return w.astype(np.float32)


def scheme_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    scheme: str = "cel",
    weights: torch.Tensor | None = None,
    ml_threshold: float = 0.3,
    label_smoothing: float = 0.0,
    drop_single: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean loss of a batch under one label scheme (optionally class-weighted)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown label scheme {scheme!r}; choose from {SCHEMES}")
    if scheme == "ml" and label_smoothing > 0:
        raise ValueError("label smoothing does not apply to the multi-label (ml) scheme")
    dist = normalise_votes(targets, drop_single)
    logp = F.log_softmax(logits.float(), dim=1)
    k = logits.shape[1]
    keep: torch.Tensor | None = None  # rows the scheme leaves out get weight 0
    if scheme == "mv":
        top = dist.max(1)
        keep = top.values > 0.5
        target = F.one_hot(top.indices, k).float()
    elif scheme == "pld":
        hard = torch.multinomial(dist, 1, generator=generator).squeeze(1)
        target = F.one_hot(hard, k).float()
    elif scheme == "cel":
        target = dist
    else:  # ml
        ok = dist >= ml_threshold - 1e-6
        keep = ok.any(1)
        masked = logp.masked_fill(~ok, -1e4)  # (finite: rows left out must not make NaN gradients)
        loss = -masked.max(1).values
        w = torch.ones_like(loss) if weights is None else (
            (ok.float() * dist * weights[None, :]).sum(1) / (ok.float() * dist).sum(1).clamp_min(1e-8))
        return _weighted_mean(loss, w * keep.float())
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / k
    loss = -(target * logp).sum(1)
    w = torch.ones_like(loss) if weights is None else (target * weights[None, :]).sum(1)
    return _weighted_mean(loss, w if keep is None else w * keep.float())


def _weighted_mean(loss: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted mean; 0 (with a gradient path) when every row has weight 0."""
    total = w.sum()
    return (loss * w).sum() / total if float(total) > 0 else (loss * 0).sum()
