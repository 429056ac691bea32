"""Heat maps: attention rollout (Abnar & Zuidema 2020), RAN region weights, Grad-CAM (Selvaraju et al. 2017).

:func:`explain` is the entry point: a uint8 face in, ``(heat map, class probabilities, details)`` out. The
per-method functions it dispatches to (:func:`gradcam`, :func:`transformer_heatmap`, :func:`ran_heatmap`) are
the lower level: a float tensor ``(1, C, H, W)`` in, ``(heat map, raw logits tensor, details)`` out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models.ran import RAN
from ..models.transformers import LandmarkTransformer, ViT
from .render import render  # noqa: F401 - re-exported (its home before the numpy-only split)


def rollout(attns: list[torch.Tensor], head_fusion: str = "mean", residual: bool = True) -> torch.Tensor:
    """Attention rollout: relevance ``(B, T - 1)`` of each token for the class token (token 0).

    ``attns``: per layer ``(B, heads, T, T)`` (rows = queries). Heads are fused (mean / max / min), the
    residual connection is modelled as ``0.5 A + 0.5 I`` with rows renormalised, layers are multiplied.
    """
    joint: torch.Tensor | None = None
    for a in attns:
        a = {"mean": a.mean(1), "max": a.amax(1), "min": a.amin(1)}[head_fusion]
        if residual:
            a = 0.5 * a + 0.5 * torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = a / a.sum(-1, keepdim=True)
        joint = a if joint is None else a @ joint
    if joint is None:
        raise ValueError("no attention maps: run a forward pass with keep_attention(True)")
    return joint[:, 0, 1:]


def paint_boxes(weights: torch.Tensor | np.ndarray, boxes: torch.Tensor | np.ndarray, size: int = 48) -> np.ndarray:
    """Heat map ``(size, size)``: each normalised box ``(cx, cy, w, h)`` adds its weight over its area."""
    heat = np.zeros((size, size), np.float64)
    for wgt, (cx, cy, w, h) in zip(np.asarray(weights, np.float64), np.asarray(boxes, np.float64)):
        x0, x1 = int(max(0, round((cx - w / 2) * size))), int(min(size, round((cx + w / 2) * size)))
        y0, y1 = int(max(0, round((cy - h / 2) * size))), int(min(size, round((cy + h / 2) * size)))
        heat[y0:y1, x0:x1] += wgt
    return heat


def _norm(h: np.ndarray) -> np.ndarray:
    h = h - h.min()
    return (h / h.max() if h.max() > 0 else h).astype(np.float32)


@torch.no_grad()
def transformer_heatmap(net: nn.Module, x: torch.Tensor, size: int = 48) -> tuple[np.ndarray, torch.Tensor,
                                                                                    dict[str, Any]]:
    """Rollout heat map of a ViT / landmark transformer (``net`` = FERNet) for one face ``(1, 1, H, W)``."""
    bb = net.backbone
    bb.tf.keep_attention(True)
    try:
        logits = net(x)
        rel = rollout(bb.tf.attention_maps())[0]
    finally:
        bb.tf.keep_attention(False)
    info: dict[str, Any] = {"method": "attention rollout"}
    if isinstance(bb, ViT):
        g = bb.grid
        heat = F.interpolate(rel.reshape(1, 1, g, g), size=(size, size), mode="bilinear", align_corners=False)
        return _norm(heat[0, 0].numpy()), logits, info
    nr = bb.n_region_tokens
    heat = paint_boxes(rel[:nr], bb.boxes, size)
    if bb.n_cnn_tokens:
        g = int(round(bb.n_cnn_tokens**0.5))
        heat += F.interpolate(rel[nr:].reshape(1, 1, g, g), size=(size, size), mode="nearest")[0, 0].numpy()
    info["tokens"] = {n: float(v) for n, v in zip(bb.region_names, rel[:nr])}
    info["cnn_tokens_total"] = float(rel[nr:].sum())
    return _norm(heat), logits, info


@torch.no_grad()
def ran_heatmap(net: nn.Module, x: torch.Tensor, size: int = 48, boxes: torch.Tensor | None = None
                ) -> tuple[np.ndarray, torch.Tensor, dict[str, Any]]:
    """RAN region weights (self-attention x relation attention, normalised) painted over the crops (a mesh-placed
    RAN gets its boxes from the face mesh on the face unless ``boxes`` ``(1, R, 4)`` are given)."""
    bb: RAN = net.backbone
    if boxes is None and bb.wants_boxes:
        from ..face.regions import mesh_region_boxes

        face = (x[0, 0].numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
        boxes = torch.from_numpy(mesh_region_boxes(face[None], bb.region_names, cache=False))
    logits = net(x) if boxes is None else net(x, boxes)
    mu, nu = bb.last_weights
    w = (mu * nu)[0]
    w = w / w.sum()
    heat = paint_boxes(w[1:], bb.boxes if boxes is None else boxes[0], size) + float(w[0])
    info = {"method": "RAN region weights (mu * nu, normalised)" + (", mesh-placed crops" if bb.wants_boxes else ""),
            "weights": {n: float(v) for n, v in zip(bb.names, w)},
            "self_attention": {n: float(v) for n, v in zip(bb.names, mu[0])}}
    return _norm(heat), logits, info


def gradcam(net: nn.Module, x: torch.Tensor, target: int | None = None, layer: nn.Module | None = None,
            size: int = 48) -> tuple[np.ndarray, torch.Tensor, dict[str, Any]]:
    """Grad-CAM of class ``target`` (default: the predicted one) at ``layer`` (default: the last module to
    produce a spatial map larger than 1x1, i.e. the final activated feature map before global pooling)."""
    net.eval()
    if layer is None:
        done: list[nn.Module] = []
        hs = [m.register_forward_hook(
            lambda mod, i, o: done.append(mod) if torch.is_tensor(o) and o.ndim == 4 and o.shape[-1] > 1 else None)
            for m in net.modules() if m is not net]
        with torch.no_grad():
            net(x)
        for h in hs:
            h.remove()
        if not done:
            raise ValueError("model has no spatial feature map for Grad-CAM")
        layer = done[-1]
    acts: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda mod, i, o: acts.append(o))
    try:
        with torch.enable_grad():
            logits = net(x)
            a = acts[-1]
            cls = int(logits[0].argmax()) if target is None else target
            (g,) = torch.autograd.grad(logits[0, cls], a)
    finally:
        hook.remove()
    w = g.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((w * a).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=(size, size), mode="bilinear", align_corners=False)[0, 0].detach().numpy()
    return _norm(cam), logits.detach(), {"method": "Grad-CAM", "layer": type(layer).__name__,
                                         "layer_shape": list(a.shape[1:]), "class": cls}


def explain(net: nn.Module, face: np.ndarray,
            temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Heat map ``(48, 48)`` in [0, 1], class probabilities (``softmax(logits / temperature)``: give the run's
    fitted temperature for calibrated ones) and details for a uint8 face ``(48, 48)``.

    A close-crop run (:class:`~ferkit.training.augment.CloseCropped`) is explained on the crop it sees, and its
    map is placed over that part of the face (nothing outside it)."""
    from ..errors import InputError
    from ..training.augment import CloseCropped

    if not isinstance(net, nn.Module):
        raise InputError(f"explain() takes a trained torch network (ferkit.training.load_run_model), got "
                         f"{type(net).__name__}; for an exported model use ferkit.explain.occlusion_map(m.predict, "
                         "face)")
    face = np.asarray(face)
    if face.dtype != np.uint8 or face.ndim != 2:
        raise InputError(f"face must be a grey uint8 (H, W) array, got {face.shape} {face.dtype}")
    if isinstance(net, CloseCropped):
        import cv2

        s = face.shape[0]
        side = max(1, round(s * net.crop))
        off = (s - side) // 2
        crop = cv2.resize(face[off:off + side, off:off + side], (s, s), interpolation=cv2.INTER_LINEAR)
        heat, probs, info = explain(net.model, crop, temperature)
        full = np.zeros_like(heat)
        full[off:off + side, off:off + side] = cv2.resize(heat, (side, side), interpolation=cv2.INTER_LINEAR)
        return full, probs, {**info, "method": f"{info['method']} (close crop {net.crop:g})"}
    x = torch.from_numpy(face.astype(np.float32)[None, None] / 255)
    net.eval()
    bb = getattr(net, "backbone", net)
    if isinstance(bb, (ViT, LandmarkTransformer)):
        heat, logits, info = transformer_heatmap(net, x)
    elif isinstance(bb, RAN):
        heat, logits, info = ran_heatmap(net, x)
    else:
        heat, logits, info = gradcam(net, x)
    return heat, torch.softmax(logits[0] / temperature, 0).numpy(), info
