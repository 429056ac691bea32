"""Per-face quality, clip verdicts and summaries (per video, per track, per time interval).

Verdict methods (:func:`verdict`) for a set of per-frame probability rows:

* ``majority``: the most frequent per-frame top label;
* ``mean``: the class of highest mean probability;
* ``weighted``: the mean with ``neutral`` down-weighted (``neutral_weight``);
* ``peak`` (default): the class of highest mean probability over the most expressive ``peak_fraction`` of the
  frames (the half with the lowest ``neutral`` probability). A labelled clip is labelled by its apex: frames
  before and after are often neutral, so the plain mean and majority vote tend to answer ``neutral``. See
  ``docs/video/README.md`` for the measurements behind this choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ferkit.labels import EMOTIONS, SENTIMENTS, sentiment_matrix

__all__ = ["VERDICT_METHODS", "class_columns", "face_quality", "summarize", "verdict"]

VerdictMethod = Literal["peak", "mean", "majority", "weighted"]
VERDICT_METHODS: tuple[str, ...] = ("peak", "mean", "majority", "weighted")
DEFAULT_VERDICT = "peak"
PEAK_FRACTION = 0.5
NEUTRAL_WEIGHT = 0.3

#: Face-size ramp for the quality score: shorter box side (px) judged useless / fully usable.
SIZE_MIN, SIZE_OK = 16.0, 48.0
#: Detector score judged fully confident.
SCORE_OK = 0.75
#: Sharpness (variance of the Laplacian of the 48 px aligned grey crop) judged useless / fully usable: a Gaussian
#: blur of sigma 2 px at that scale gives ~17, sigma 1.3 ~60; sharp FER2013 faces are 700-4,000.
SHARP_MIN, SHARP_OK = 15.0, 60.0
#: Head yaw ratio (nose offset from the eyes' midpoint / eye distance) judged fully frontal / useless.
YAW_OK, YAW_MAX = 0.25, 0.8


def class_columns(df: Any) -> list[str]:
    """The probability columns present in a result table, in :data:`ferkit.labels.EMOTIONS` order."""
    return [c for c in EMOTIONS if c in df.columns]


def face_quality(boxes: np.ndarray, det_score: np.ndarray | None = None,
                 landmarks: np.ndarray | None = None, sharpness: np.ndarray | None = None) -> np.ndarray:
    """Quality in [0, 1] per face: the product of a size term (shorter box side, 16 px -> 0, 48 px -> 1), a
    detector-confidence term (score / 0.75, NaN counts as sure) and, with 468-point landmarks, a frontalness
    term (nose tip offset from the eyes' midpoint relative to the eye distance: 0.25 -> 1, 0.8 -> 0) and, with the
    pipeline's ``sharpness`` column, a blur term (15 -> 0, 60 -> 1; NaN counts as sharp)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    side = np.minimum(b[:, 2], b[:, 3])
    q = np.clip((side - SIZE_MIN) / (SIZE_OK - SIZE_MIN), 0.0, 1.0)
    if det_score is not None:
        s = np.asarray(det_score, np.float64)
        q = q * np.clip(np.where(np.isnan(s), 1.0, s / SCORE_OK), 0.0, 1.0)
    if landmarks is not None:
        q = q * _frontal(np.asarray(landmarks, np.float64))
    if sharpness is not None:
        sh = np.asarray(sharpness, np.float64)
        q = q * np.where(np.isnan(sh), 1.0, np.clip((sh - SHARP_MIN) / (SHARP_OK - SHARP_MIN), 0.0, 1.0))
    return q.astype(np.float32)


def _frontal(lm: np.ndarray) -> np.ndarray:
    """Frontalness term from MediaPipe mesh points (n, 468, 2); 1 where the mesh is missing (NaN)."""
    right_eye, left_eye, nose = lm[:, 33], lm[:, 263], lm[:, 1]
    mid = (right_eye + left_eye) / 2
    eye_d = np.linalg.norm(left_eye - right_eye, axis=1)
    axis = (left_eye - right_eye) / np.maximum(eye_d, 1e-6)[:, None]
    yaw = np.abs(((nose - mid) * axis).sum(1)) / np.maximum(eye_d, 1e-6)
    t = np.clip(1.0 - (yaw - YAW_OK) / (YAW_MAX - YAW_OK), 0.0, 1.0)
    return np.where(np.isnan(t), 1.0, t)


def verdict(probs: np.ndarray, classes: Sequence[str], method: str = DEFAULT_VERDICT,
            peak_fraction: float = PEAK_FRACTION, neutral_weight: float = NEUTRAL_WEIGHT) -> str | None:
    """The clip's class from per-frame probabilities ``(n, C)``; ``None`` when there are no rows."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or len(p) == 0:
        return None
    return classes[int(_scores(p, list(classes), method, peak_fraction, neutral_weight).argmax())]


def _scores(p: np.ndarray, classes: list[str], method: str, peak_fraction: float, neutral_weight: float
            ) -> np.ndarray:
    neutral = classes.index("neutral") if "neutral" in classes else None
    if method == "majority":
        return np.bincount(p.argmax(1), minlength=p.shape[1]).astype(np.float64) + 1e-6 * p.mean(0)
    if method == "mean":
        return p.mean(0)
    if method == "weighted":
        m = p.mean(0)
        if neutral is not None:
            m[neutral] *= neutral_weight
        return m
    if method == "peak":
        if neutral is None:
            return p.mean(0)
        k = max(1, int(round(peak_fraction * len(p))))
        sel = np.argsort(p[:, neutral], kind="stable")[:k]
        return p[sel].mean(0)
    raise ValueError(f"unknown verdict method {method!r}; use one of {', '.join(VERDICT_METHODS)}")


def _group_stats(p: np.ndarray, times: np.ndarray, sent_p: np.ndarray, classes: list[str], method: str,
                 peak_fraction: float, neutral_weight: float) -> dict[str, Any]:
    n = len(p)
    row: dict[str, Any] = {"rows": n}
    if n == 0:
        row.update({"start_s": np.nan, "end_s": np.nan, "verdict": None, "dominant_majority": None,
                    "dominant_mean": None, "sentiment": None, "sentiment_score": np.nan})
        for c in classes:
            row[f"share_{c}"] = np.nan
        for c in classes:
            row[f"mean_{c}"] = np.nan
        for s in SENTIMENTS:
            row[f"sentiment_share_{s}"] = np.nan
        return row
    top = np.bincount(p.argmax(1), minlength=len(classes)) / n
    mean = p.mean(0)
    stop = np.bincount(sent_p.argmax(1), minlength=3) / n
    smean = sent_p.mean(0)
    row.update({
        "start_s": float(times.min()), "end_s": float(times.max()),
        "verdict": verdict(p, classes, method, peak_fraction, neutral_weight),
        "dominant_majority": classes[int(top.argmax())], "dominant_mean": classes[int(mean.argmax())],
        "sentiment": SENTIMENTS[int(smean.argmax())], "sentiment_score": float(smean[2] - smean[0]),
    })
    for c, v in zip(classes, top):
        row[f"share_{c}"] = float(v)
    for c, v in zip(classes, mean):
        row[f"mean_{c}"] = float(v)
    for s, v in zip(SENTIMENTS, stop):  # own prefix: "share_neutral" is the emotion's share
        row[f"sentiment_share_{s}"] = float(v)
    return row


def summarize(df: Any, by: Literal["video", "track", "interval"] = "video", *, sources: Sequence[str] = (),
              interval_s: float | None = None, interval_frames: int | None = None,
              sentiment_map: str | dict[str, str] = "valence", min_quality: float = 0.0,
              method: str = DEFAULT_VERDICT, peak_fraction: float = PEAK_FRACTION,
              neutral_weight: float = NEUTRAL_WEIGHT) -> Any:
    """Summary ``DataFrame`` of (tracked) result rows.

    ``by="video"``: one row per source; ``"track"``: per source and ``face_id``; ``"interval"``: per source,
    ``face_id`` and time bin (``interval_s`` seconds or ``interval_frames`` frames). Rows whose ``quality``
    column is below ``min_quality`` are left out (counted in ``flagged``). ``sources`` lists inputs to report
    even without rows (a video with no face gets a row with ``rows`` 0 and ``status`` ``no_face``).

    Columns: keys, ``rows``, ``flagged``, ``start_s``, ``end_s``, ``verdict`` (``method``),
    ``dominant_majority``, ``dominant_mean``, ``sentiment`` (of the mean sentiment probabilities),
    ``sentiment_score`` (mean P(positive) - P(negative)), ``share_<class>`` (share of frames whose top label
    is the class), ``mean_<class>``, ``sentiment_share_negative/neutral/positive`` (share of frames whose top
    sentiment is that one), ``status``.
    """
    import pandas as pd

    if method not in VERDICT_METHODS:
        raise ValueError(f"unknown verdict method {method!r}; use one of {', '.join(VERDICT_METHODS)}")
    classes = class_columns(df)
    if not classes:
        classes = list(EMOTIONS[:7]) if not len(df) else []
        if len(df):
            raise ValueError("the table has no probability columns (angry ... neutral)")
    smat = sentiment_matrix(classes, sentiment_map).astype(np.float64)
    keys = {"video": ["source"], "track": ["source", "face_id"], "interval": ["source", "face_id", "interval"]}[by]
    work = df
    if by == "interval":
        if (interval_s is None) == (interval_frames is None):
            raise ValueError("give interval_s or interval_frames for by='interval'")
        work = df.copy()
        if interval_s is not None:
            if interval_s <= 0:
                raise ValueError(f"interval_s must be > 0, got {interval_s}")
            work["interval"] = np.floor(work["time_s"].to_numpy() / interval_s).astype(np.int64)
        else:
            if interval_frames is None or interval_frames < 1:
                raise ValueError(f"interval_frames must be >= 1, got {interval_frames}")
            work["interval"] = (work["frame"].to_numpy() // interval_frames).astype(np.int64)
    probs = work[classes].to_numpy(np.float64) if len(work) else np.zeros((0, len(classes)))
    qual = work["quality"].to_numpy(np.float64) if "quality" in work.columns else np.ones(len(work))
    good = ~(qual < min_quality)
    times = work["time_s"].to_numpy(np.float64) if len(work) else np.zeros(0)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    if len(work):
        for key, idx in work.groupby(keys, sort=False).indices.items():
            key = key if isinstance(key, tuple) else (key,)
            sel = idx[good[idx]]
            p = probs[sel]
            row = dict(zip(keys, key))
            if by == "interval":
                lo = row["interval"] * (interval_s if interval_s is not None else interval_frames)
                row["interval_start"] = lo
            row["flagged"] = int(len(idx) - len(sel))
            row.update(_group_stats(p, times[sel], p @ smat, classes, method, peak_fraction, neutral_weight))
            row["status"] = "ok" if len(sel) else "low_quality"
            out.append(row)
            seen.add(str(key[0]))
    for s in sources:
        if s not in seen:
            row = dict.fromkeys(keys)
            row["source"] = s
            row["flagged"] = 0
            row.update(_group_stats(np.zeros((0, len(classes))), np.zeros(0), np.zeros((0, 3)), classes, method,
                                    peak_fraction, neutral_weight))
            row["status"] = "no_face"
            out.append(row)
    res = pd.DataFrame(out)
    if not len(res):
        cols = [*keys, "flagged", *_group_stats(np.zeros((0, len(classes))), np.zeros(0), np.zeros((0, 3)),
                                                 classes, method, peak_fraction, neutral_weight), "status"]
        return pd.DataFrame(columns=cols)
    if by == "interval":
        res["interval_start"] = res["interval_start"].astype(float)
    front = [*keys, *(["interval_start"] if by == "interval" else []), "status", "rows", "flagged"]
    return res[front + [c for c in res.columns if c not in front]]
