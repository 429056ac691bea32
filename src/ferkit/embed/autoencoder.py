"""Training helpers for the autoencoders of :mod:`ferkit.models.autoencoder`: reconstruction training, latent
codes, and the semi-supervised head on a frozen encoder."""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn

from ..models.autoencoder import AEClassifier, ConvAE, DenseAE

__all__ = ["AEClassifier", "ConvAE", "DenseAE", "encode", "make_autoencoder", "train_autoencoder", "train_head"]


def make_autoencoder(kind: str, latent: int = 64) -> nn.Module:
    if kind == "dense":
        return DenseAE(latent)
    if kind == "conv":
        return ConvAE(latent)
    raise ValueError(f"unknown autoencoder {kind!r}; use dense or conv")


def _faces_48(images: np.ndarray) -> np.ndarray:
    """The uint8 ``(n, 48, 48)`` faces these autoencoders take (floats or colour would be misread silently)."""
    from ..errors import InputError

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (48, 48):
        raise InputError(f"faces must be uint8 grey (n, 48, 48), got {images.shape} {images.dtype}")
    return images


def train_autoencoder(ae: nn.Module, images: np.ndarray, epochs: int = 5, minutes: float = 0.0,
                      batch: int = 128, lr: float = 2e-3, seed: int = 0, log: list[dict] | None = None) -> nn.Module:
    """Fit ``ae`` on uint8 faces ``(n, 48, 48)`` with MSE in the normalised space (horizontal flips),
    for ``epochs`` or until ``minutes`` of wall-clock have passed (checked per step)."""
    g = torch.Generator().manual_seed(seed)
    images = _faces_48(images)
    x_all = torch.from_numpy(images[:, None].astype(np.float32) / 255 * 2 - 1)
    opt = torch.optim.AdamW(ae.parameters(), lr=lr, weight_decay=1e-4)
    n_steps = epochs * math.ceil(len(x_all) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=n_steps, pct_start=0.1)
    t0, step = time.time(), 0
    ae.train()
    for ep in range(epochs):
        perm = torch.randperm(len(x_all), generator=g)
        tot, seen = 0.0, 0
        for i in range(0, len(perm), batch):
            x = x_all[perm[i:i + batch]]
            flip = torch.rand(len(x), generator=g) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = nn.functional.mse_loss(ae(x), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step < n_steps - 1:
                sched.step()
            step += 1
            tot, seen = tot + loss.item() * len(x), seen + len(x)
            if minutes and time.time() - t0 > minutes * 60:
                break
        if log is not None:
            log.append({"epoch": ep + 1, "mse": round(tot / max(seen, 1), 5), "time_s": round(time.time() - t0, 1)})
        if minutes and time.time() - t0 > minutes * 60:
            break
    return ae.eval()


@torch.no_grad()
def encode(encoder: nn.Module, images: np.ndarray, batch: int = 512) -> np.ndarray:
    """Latent codes of uint8 faces ``(n, 48, 48)`` (same normalisation as training)."""
    images = _faces_48(images)
    encoder.eval()
    x = torch.from_numpy(images[:, None].astype(np.float32) / 255 * 2 - 1)
    return torch.cat([encoder(x[i:i + batch]) for i in range(0, len(x), batch)]).numpy()


def train_head(clf: AEClassifier, z: np.ndarray, targets: np.ndarray, epochs: int = 60, lr: float = 3e-3,
               seed: int = 0) -> AEClassifier:
    """Train the head of ``clf`` on fixed latent codes ``z`` with vote-distribution targets (CEL-style soft CE)."""
    torch.manual_seed(seed)
    zt = torch.from_numpy(z.astype(np.float32))
    t = torch.from_numpy(targets.astype(np.float32))
    t = t / t.sum(1, keepdim=True).clamp_min(1e-8)
    params = [*clf.head.parameters(), *clf.fc.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-3)
    clf.train()
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(zt), generator=g)
        for i in range(0, len(perm), 256):
            b = perm[i:i + 256]
            loss = -(t[b] * torch.log_softmax(clf.fc(clf.head(zt[b])), 1)).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return clf.eval()
