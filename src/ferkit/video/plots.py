"""Pictures of a video's expressions (matplotlib, headless): timelines, sentiment, distributions, thumbnails."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["COLORS", "distribution_figure", "fig_to_base64", "peak_moments", "read_thumbnails",
           "sentiment_figure", "thumbnail_figure", "timeline_figure"]

COLORS = {"angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#f2c12e", "sad": "#1f77b4",
          "surprise": "#ff7f0e", "neutral": "#b0b0b0", "contempt": "#2ca02c"}


_TITLE_COLORS = {"happy": "#a07800", "neutral": "#555555"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def fig_to_base64(fig: Any, fmt: str = "png") -> str:
    """A figure as a ``data:`` URI (and the figure closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=90, bbox_inches="tight")
    _plt().close(fig)
    mime = "image/svg+xml" if fmt == "svg" else f"image/{fmt}"
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _tracks(df: Any) -> list[int]:
    return sorted(int(i) for i in df["face_id"].unique()) if len(df) else []


def _gaps(t: np.ndarray, y: np.ndarray, max_gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Insert NaN rows where consecutive times are more than ``max_gap`` apart (the plot breaks there)."""
    if len(t) < 2:
        return t, y
    cut = np.flatnonzero(np.diff(t) > max_gap) + 1
    if not len(cut):
        return t, y
    t2 = np.insert(t.astype(float), cut, np.nan)
    y2 = np.insert(y.astype(float), cut, np.nan, axis=0)
    return t2, y2


def timeline_figure(df: Any, classes: Sequence[str], duration_s: float | None = None) -> Any:
    """Stacked class probabilities over time, one panel per face (track)."""
    plt = _plt()
    ids = _tracks(df)
    fig, axes = plt.subplots(len(ids), 1, figsize=(10, 1.9 * len(ids) + 0.6), squeeze=False, sharex=True)
    t_end = duration_s or (float(df["time_s"].max()) if len(df) else 1.0)
    step = _step(df)
    for ax, fid in zip(axes[:, 0], ids):
        sub = df[df["face_id"] == fid].sort_values("time_s")
        t = sub["time_s"].to_numpy(float)
        p = sub[list(classes)].to_numpy(float)
        t, p = _gaps(t, p, max(3 * step, 0.5))
        ax.stackplot(t, np.nan_to_num(p).T, colors=[COLORS.get(c, "#777") for c in classes], labels=list(classes),
                     linewidth=0)
        if np.isnan(t).any():  # blank the gaps (stackplot draws through NaN as zeros)
            for a, b in _nan_spans(t):
                ax.axvspan(a, b, color="white", zorder=3)
        ax.set_xlim(0, max(t_end, 1e-3))  # a photo is one instant: a zero-width axis would warn
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"face {fid}", rotation=0, ha="right", va="center")
        ax.set_yticks([0, 0.5, 1])
        if "low_quality" in sub.columns and sub["low_quality"].any():
            lt = sub.loc[sub["low_quality"], "time_s"].to_numpy(float)
            ax.plot(lt, np.full(len(lt), 0.98), "|", color="black", ms=6, zorder=4)
    axes[-1, 0].set_xlabel("time (s)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(classes), frameon=False, bbox_to_anchor=(0.5, 1.02))
    fig.suptitle("Emotion probabilities over time (| = low-quality face)", y=1.07, fontsize=11)
    return fig


def _nan_spans(t: np.ndarray) -> list[tuple[float, float]]:
    out = []
    for i in np.flatnonzero(np.isnan(t)):
        if 0 < i < len(t) - 1:
            out.append((float(t[i - 1]), float(t[i + 1])))
    return out


def _step(df: Any) -> float:
    t = np.unique(df["time_s"].to_numpy(float)) if len(df) else np.zeros(0)
    return float(np.median(np.diff(t))) if len(t) > 1 else 0.04


def sentiment_figure(df: Any, duration_s: float | None = None) -> Any:
    """P(positive) - P(negative) over time, one line per face."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 2.6))
    step = _step(df)
    for k, fid in enumerate(_tracks(df)):
        sub = df[df["face_id"] == fid].sort_values("time_s")
        t, s = _gaps(sub["time_s"].to_numpy(float), sub["sentiment_score"].to_numpy(float), max(3 * step, 0.5))
        ax.plot(t, s, lw=1.4, label=f"face {fid}", color=plt.cm.tab10(k % 10))
    ax.axhline(0, color="#888", lw=0.8)
    t_end = max(duration_s or (float(df["time_s"].max()) if len(df) else 1.0), 1e-3)  # a photo: one instant
    ax.fill_between([0, t_end], 0, 1, color="#2ca02c", alpha=0.06)
    ax.fill_between([0, t_end], -1, 0, color="#d62728", alpha=0.06)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlim(0, t_end)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("P(pos) - P(neg)")
    ax.set_title("Sentiment over time", fontsize=11)
    if len(_tracks(df)) > 1:
        ax.legend(frameon=False, ncol=6, fontsize=8)
    return fig


def distribution_figure(track_summary: Any, classes: Sequence[str]) -> Any:
    """Share of frames per top emotion, one bar per face."""
    plt = _plt()
    ts = track_summary
    fig, ax = plt.subplots(figsize=(10, 0.55 * max(len(ts), 1) + 1.2))
    left = np.zeros(len(ts))
    ylab = [f"face {int(f)}" for f in ts["face_id"]]
    for c in classes:
        v = ts[f"share_{c}"].fillna(0).to_numpy(float)
        ax.barh(ylab, v, left=left, color=COLORS.get(c, "#777"), label=c)
        for y, (lo, w) in enumerate(zip(left, v)):
            if w >= 0.08:
                ax.text(lo + w / 2, y, f"{100 * w:.0f}%", ha="center", va="center", fontsize=8)
        left += v
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of frames (top label)")
    ax.legend(ncol=len(classes), frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8)
    return fig


def peak_moments(df: Any, classes: Sequence[str], per_track: int = 4, min_quality: float = 0.0) -> list[dict]:
    """The moments of peak emotion: per track, for its most frequent top labels (up to ``per_track``), the row
    where that class's probability is highest. Returns dicts with face_id, emotion, prob, frame, time_s, box."""
    out: list[dict] = []
    for fid in _tracks(df):
        sub = df[(df["face_id"] == fid)]
        if "quality" in sub.columns and (sub["quality"] >= min_quality).any():
            sub = sub[sub["quality"] >= min_quality]
        top = sub["emotion"].value_counts()
        for emo in top.index[:per_track]:
            r = sub.loc[sub[emo].idxmax()]
            out.append({"face_id": fid, "emotion": emo, "prob": float(r[emo]), "frame": int(r["frame"]),
                        "time_s": float(r["time_s"]), "box": (float(r["x"]), float(r["y"]), float(r["w"]),
                                                              float(r["h"]))})
    return out


def read_thumbnails(video: str | Path, moments: list[dict], size: int = 112) -> list[np.ndarray | None]:
    """Face crops (BGR, ``size`` square) at the given moments, re-reading only those frames of ``video``."""
    import cv2

    from ferkit.io import iter_frames

    out: list[np.ndarray | None] = [None] * len(moments)
    if not Path(video).is_file():
        return out
    for i, m in enumerate(moments):
        try:
            with iter_frames(video, start=max(0.0, m["time_s"] - 0.02), end=m["time_s"] + 0.2) as frames:
                best = None
                for fr in frames:
                    if best is None or abs(fr.time_s - m["time_s"]) < abs(best.time_s - m["time_s"]):
                        best = fr
                    if fr.index >= m["frame"]:
                        break
        except Exception:  # noqa: BLE001 - a thumbnail is optional
            continue
        if best is None:
            continue
        img = best.image
        x, y, w, h = m["box"]
        pad = 0.15 * max(w, h)
        side = max(w, h) + 2 * pad
        cx, cy = x + w / 2, y + h / 2
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        x1, y1 = x0 + int(round(side)), y0 + int(round(side))
        crop = np.zeros((max(y1 - y0, 1), max(x1 - x0, 1), 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, img.shape[1]), min(y1, img.shape[0])
        if sx1 > sx0 and sy1 > sy0:
            crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
        out[i] = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return out


def thumbnail_figure(moments: list[dict], thumbs: list[np.ndarray | None]) -> Any | None:
    """A strip of face thumbnails with their emotion, probability and time; ``None`` without any."""
    pairs = [(m, t) for m, t in zip(moments, thumbs) if t is not None]
    if not pairs:
        return None
    plt = _plt()
    n = len(pairs)
    cols = min(n, 8)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.45 * cols, 1.75 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (m, t) in zip(axes.ravel(), pairs):
        ax.imshow(t[:, :, ::-1])
        ax.set_title(f"face {m['face_id']}: {m['emotion']}\n{m['prob']:.2f} at {m['time_s']:.1f} s", fontsize=8,
                     color=_TITLE_COLORS.get(m["emotion"], COLORS.get(m["emotion"], "black")))
    fig.tight_layout()
    return fig
