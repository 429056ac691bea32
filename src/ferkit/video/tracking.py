"""Face tracking: stable ``face_id`` per person across the frames of a video.

:class:`Tracker` matches each frame's face boxes to the running tracks by box overlap (IoU) and centre distance
to a constant-velocity prediction, with a small optimal (Hungarian) assignment. A track survives up to
``max_missed`` analysed frames without a match (a face turned away, a missed detection); a face that matches
no track starts a new id. It implements the pipeline's :class:`ferkit.pipeline.FaceTracker` hook
(``Analyzer(tracker=Tracker())``) and also tracks rows after the fact (:func:`track_rows`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Tracker", "assign_min_cost", "track_rows"]

_INF = 1e9


def assign_min_cost(cost: np.ndarray, max_cost: float = _INF) -> list[tuple[int, int]]:
    """Optimal one-to-one assignment (Hungarian / Kuhn-Munkres, O(n^3)) of rows to columns of ``cost``.

    Pairs with cost ``>= max_cost`` (gated out) are not returned. Works for rectangular matrices.
    """
    cost = np.asarray(cost, np.float64)
    n_r, n_c = cost.shape
    if n_r == 0 or n_c == 0:
        return []
    transposed = n_r > n_c
    a = cost.T if transposed else cost  # rows <= cols
    n, m = a.shape
    a = np.minimum(a, _INF)
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, np.int64)  # p[j]: row (1-based) assigned to column j
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            cur = a[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(cand.argmin()) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    out = []
    for j in range(1, m + 1):
        if p[j]:
            r, c = int(p[j]) - 1, j - 1
            if a[r, c] < max_cost:
                out.append((c, r) if transposed else (r, c))
    return sorted(out)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a`` (n, 4) and ``b`` (m, 4), both x, y, w, h -> (n, m)."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


@dataclass
class _Track:
    id: int
    box: list[float]  # last matched x, y, w, h
    vx: float = 0.0  # centre velocity, px per analysed frame
    vy: float = 0.0
    last: int = 0  # frame index of the last match
    hits: int = 1


@dataclass
class _State:
    tracks: list[_Track] = field(default_factory=list)
    next_id: int = 0
    step: int = 0  # smallest frame-index step seen (the analysis stride); 0 = unknown yet
    prev_frame: int | None = None


class Tracker:
    """Assign stable ids to faces across frames.

    Args:
        max_missed: a track is kept this many analysed frames without a match (then its id retires; a face that
            comes back later gets a new id).
        min_iou: a detection and a track's predicted box match if their IoU is at least this...
        max_distance: ...or their centres are at most this many face sizes apart (the gate widens by half a face
            size per missed frame, up to twice).
        max_scale: boxes whose sizes differ more than this factor never match.
        velocity_smoothing: weight of the newest motion in the velocity estimate (0 = no motion model).

    ``update(frame_index, time_s, boxes) -> ids`` for one frame; ``assign(table)`` for a
    :class:`~ferkit.results.FaceTable` (pipeline hook); ``reset(source)`` before each video. The per-frame work
    is plain Python for the usual handful of faces (a few microseconds), numpy for crowds.
    """

    def __init__(self, max_missed: int = 25, min_iou: float = 0.2, max_distance: float = 0.75,
                 max_scale: float = 1.8, velocity_smoothing: float = 0.5) -> None:
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}")
        self.max_missed = int(max_missed)
        self.min_iou = float(min_iou)
        self.max_distance = float(max_distance)
        self.max_scale = float(max_scale)
        self.velocity_smoothing = float(velocity_smoothing)
        self._s = _State()

    def get_params(self) -> dict[str, Any]:
        """The settings (for reports)."""
        return {k: getattr(self, k) for k in ("max_missed", "min_iou", "max_distance", "max_scale",
                                             "velocity_smoothing")}

    def reset(self, source: str = "") -> None:
        """Forget all tracks (ids start again at 0)."""
        self._s = _State()

    # -- one frame ----------------------------------------------------------------------------------------------
    def update(self, frame_index: int, time_s: float, boxes: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Ids (int64, one per box) for the faces ``boxes`` (n, 4: x, y, w, h) of one frame."""
        return np.asarray(self._update(int(frame_index), np.asarray(boxes, np.float64).reshape(-1, 4).tolist()),
                          np.int64)

    def _update(self, frame_index: int, det: list[list[float]]) -> list[int]:
        s = self._s
        if s.prev_frame is not None and frame_index > s.prev_frame:
            d = frame_index - s.prev_frame
            s.step = d if s.step == 0 else min(s.step, d)
        s.prev_frame = frame_index
        step = max(s.step, 1)
        if s.tracks:  # retire tracks missed too long
            s.tracks = [t for t in s.tracks if (frame_index - t.last) / step - 1 <= self.max_missed]
        tracks = s.tracks
        ids = [-1] * len(det)
        pairs: list[tuple[int, int]] = []
        if tracks and det:
            cost = self._cost(frame_index, det, step)
            if len(tracks) == 1 or len(det) == 1:
                flat = [(c, i, j) for i, row in enumerate(cost) for j, c in enumerate(row)]
                c, i, j = min(flat)
                pairs = [(i, j)] if c < _INF else []
            else:
                pairs = assign_min_cost(np.asarray(cost), _INF)
        a = self.velocity_smoothing
        for ti, di in pairs:
            t, b = tracks[ti], det[di]
            dt = max((frame_index - t.last) / step, 1.0)
            vx = (b[0] + b[2] / 2 - t.box[0] - t.box[2] / 2) / dt
            vy = (b[1] + b[3] / 2 - t.box[1] - t.box[3] / 2) / dt
            if t.hits == 1:  # second sighting: take the motion as it is
                t.vx, t.vy = a * vx, a * vy
            else:
                t.vx, t.vy = a * vx + (1 - a) * t.vx, a * vy + (1 - a) * t.vy
            t.box, t.last, t.hits = b, frame_index, t.hits + 1
            ids[di] = t.id
        for di, v in enumerate(ids):
            if v < 0:
                ids[di] = s.next_id
                tracks.append(_Track(s.next_id, det[di], last=frame_index))
                s.next_id += 1
        return ids

    def _cost(self, frame_index: int, det: list[list[float]], step: int) -> list[list[float]]:
        """(tracks, detections) cost: 1 - IoU + normalised centre distance to the prediction; gated to _INF."""
        tracks = self._s.tracks
        if len(tracks) * len(det) > 64:
            return self._cost_np(frame_index, np.asarray(det), step).tolist()
        out = []
        for t in tracks:
            gap = max((frame_index - t.last) / step, 1.0)
            h = min(gap, 5.0)  # do not extrapolate motion far into a gap
            px, py, pw, ph = t.box[0] + t.vx * h, t.box[1] + t.vy * h, t.box[2], t.box[3]
            radius = self.max_distance * min(1.0 + 0.5 * (gap - 1.0), 2.0)
            st = math.sqrt(pw * ph)
            row = []
            for x, y, w, hh in det:
                iw = min(px + pw, x + w) - max(px, x)
                ih = min(py + ph, y + hh) - max(py, y)
                inter = iw * ih if iw > 0 and ih > 0 else 0.0
                union = pw * ph + w * hh - inter
                iou = inter / union if union > 0 else 0.0
                sd = math.sqrt(w * hh)
                dist = math.hypot(px + pw / 2 - x - w / 2, py + ph / 2 - y - hh / 2) / max(math.sqrt(st * sd), 1.0)
                ratio = max(st, sd) / max(min(st, sd), 1e-6)
                ok = (iou >= self.min_iou or dist <= radius) and ratio <= self.max_scale
                row.append((1.0 - iou) + dist if ok else _INF)
            out.append(row)
        return out

    def _cost_np(self, frame_index: int, det: np.ndarray, step: int) -> np.ndarray:
        tr = self._s.tracks
        boxes = np.array([t.box for t in tr], np.float64)
        vel = np.array([(t.vx, t.vy) for t in tr], np.float64)
        last = np.array([t.last for t in tr], np.float64)
        gap = np.maximum((frame_index - last) / step, 1.0)
        pred = boxes.copy()
        pred[:, :2] += vel * np.minimum(gap, 5.0)[:, None]
        iou = iou_matrix(pred, det)
        size_t = np.sqrt(pred[:, 2] * pred[:, 3])
        size_d = np.sqrt(det[:, 2] * det[:, 3])
        ct = pred[:, :2] + pred[:, 2:] / 2
        cd = det[:, :2] + det[:, 2:] / 2
        dist = np.linalg.norm(ct[:, None] - cd[None], axis=2) / np.maximum(np.sqrt(size_t[:, None] * size_d[None]),
                                                                           1.0)
        ratio = np.maximum(size_t[:, None], size_d[None]) / np.maximum(np.minimum(size_t[:, None], size_d[None]),
                                                                       1e-6)
        radius = self.max_distance * np.minimum(1.0 + 0.5 * (gap - 1.0), 2.0)[:, None]
        ok = ((iou >= self.min_iou) | (dist <= radius)) & (ratio <= self.max_scale)
        return np.where(ok, (1.0 - iou) + dist, _INF)

    # -- pipeline hook ---------------------------------------------------------------------------------------------
    def assign(self, table: Any) -> np.ndarray:
        """Ids for the rows of a :class:`~ferkit.results.FaceTable` (rows in frame order)."""
        return self.track_arrays(np.asarray(table.frame), np.asarray(table.time_s), np.asarray(table.boxes))

    def track_arrays(self, frames: np.ndarray, times: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Ids for rows given as arrays (any number of frames, rows of one frame together, frames in order)."""
        n = len(frames)
        out = np.empty(n, np.int64)
        if n == 0:
            return out
        frames = np.asarray(frames)
        order = np.argsort(frames, kind="stable")
        f_sorted = frames[order]
        starts = np.flatnonzero(np.r_[True, f_sorted[1:] != f_sorted[:-1]])
        ends = np.r_[starts[1:], n]
        blist = np.asarray(boxes, np.float64)[order].tolist()
        fl = f_sorted.tolist()
        res: list[int] = []
        for a, b in zip(starts.tolist(), ends.tolist()):
            res.extend(self._update(fl[a], blist[a:b]))
        out[order] = res
        return out


def track_rows(df: Any, tracker: Tracker | None = None, **params: Any) -> Any:
    """A copy of a result ``DataFrame`` with ``face_id`` replaced by track ids (per ``source``, in frame order).

    ``params`` are :class:`Tracker` settings (when ``tracker`` is not given).
    """
    trk = tracker if tracker is not None else Tracker(**params)
    out = df.copy()
    if not len(out):
        return out
    ids = np.empty(len(out), np.int64)
    pos = np.arange(len(out))
    for _, idx in out.groupby("source", sort=False).indices.items():
        trk.reset()
        sub = out.iloc[idx]
        ids[pos[idx]] = trk.track_arrays(sub["frame"].to_numpy(), sub["time_s"].to_numpy(),
                                         sub[["x", "y", "w", "h"]].to_numpy(np.float64))
    out["face_id"] = ids.astype(np.int32)
    return out
