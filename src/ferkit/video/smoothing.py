"""Temporal smoothing of the class probabilities along each track (off by default)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

__all__ = ["smooth_probabilities", "smooth_rows"]

Method = Literal["ema", "mean"]


def smooth_probabilities(times: np.ndarray, probs: np.ndarray, window_s: float, method: Method = "ema") -> np.ndarray:
    """Smoothed copy of ``probs`` (n, C) of ONE track whose rows have times ``times`` (ascending).

    ``mean``: average of the rows in the trailing window ``(t - window_s, t]``. ``ema``: exponential moving
    average with time constant ``window_s`` (irregular frame times and gaps handled: the weight of the past
    decays as ``exp(-dt / window_s)``). Rows stay probability vectors.
    """
    p = np.asarray(probs, np.float64)
    t = np.asarray(times, np.float64)
    if window_s <= 0 or len(p) < 2:
        return p.astype(np.float32)
    if method == "mean":
        cs = np.vstack([np.zeros((1, p.shape[1])), np.cumsum(p, axis=0)])
        lo = np.searchsorted(t, t - window_s, side="right")
        hi = np.arange(1, len(p) + 1)
        return ((cs[hi] - cs[lo]) / (hi - lo)[:, None]).astype(np.float32)
    if method != "ema":
        raise ValueError(f"unknown smoothing method {method!r}; use 'ema' or 'mean'")
    keep = np.exp(-np.diff(t, prepend=t[0]) / window_s).tolist()  # weight of the previous state
    rows = p.tolist()
    state = rows[0]
    res = [state]
    for k, row in zip(keep[1:], rows[1:]):  # plain Python: a few microseconds per row
        state = [k * a + (1.0 - k) * b for a, b in zip(state, row)]
        res.append(state)
    out = np.asarray(res)
    return out.astype(np.float32)


def smooth_rows(df: Any, classes: list[str], window_s: float, method: Method = "ema") -> Any:
    """Copy of a tracked result ``DataFrame`` with each track's probability columns smoothed (per source and
    ``face_id``); ``emotion`` is recomputed (``sentiment`` columns are recomputed by the caller)."""
    out = df.copy()
    if not len(out) or window_s <= 0:
        return out
    values = out[classes].to_numpy(np.float64, copy=True)
    for _, idx in out.groupby(["source", "face_id"], sort=False).indices.items():
        sub_t = out["time_s"].to_numpy()[idx]
        order = np.argsort(sub_t, kind="stable")
        rows = idx[order]
        values[rows] = smooth_probabilities(sub_t[order], values[rows], window_s, method)
    out[classes] = values.astype(np.float32)
    out["emotion"] = np.asarray(classes, dtype=object)[values.argmax(1)]
    return out
