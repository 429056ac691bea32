"""The analysis pipeline: frames -> faces -> 468-point mesh -> aligned crops -> expression -> result rows.

:class:`Analyzer` keeps the models loaded; :func:`analyze` is the one-call version.

How it runs (plain CPU, no torch):

* **Photos** (and numpy arrays): BlazeFace on the whole image, the face mesh on every face, similarity
  alignment on the eye and mouth centres (BlazeFace key points when the mesh fails), and the expression model
  once for all faces of a batch of images. Any detection above ``score_threshold`` is kept: a still photo has no
  second chance, and the face mesh fails on some real faces (black-and-white, near-profile). Photos larger than
  1600 px are also searched in overlapping ~1024 px tiles (BlazeFace sees the whole image at 192 px and misses
  faces under ~1/18 of its side); a face found only in a tile must be confirmed like a video detection.
* **Videos** are read with exact timestamps (``every`` N frames or ``fps`` F), in batches. By default the
  detector runs every ``detect_every`` analysed frames (auto: about every 0.2 s of video) and the mesh
  *follows* each face in between (its next region of interest comes from the current landmarks, as MediaPipe
  does); a face whose mesh presence drops below 0.5 is dropped and the detector runs again on the next frame;
  while no face is followed the detector runs on every frame (so a face that appears is found at once).
  Boxes of followed frames are the face's last detector box moved and scaled with the mesh.
  ``detect_every=1`` detects on every frame. In videos, a detection is kept only if the mesh confirms a face
  (presence >= ``min_presence``) or the detector is sure (score >= ``confident_score``): this removes the
  stylised letters that BlazeFace scores 0.45-0.63 in animated titles (``no_face.mp4``), which persist over
  many frames, while real video faces come with presence ~1.0.
* **Face crops** (inputs that are already a face, like 48x48 FER2013 images) are recognised automatically
  (small near-square images whose face fills the frame) or forced with ``detect=False``: the whole image is
  the face, resized to the model input.
* **Both cores**: a long video is cut into time ranges (chunks) that this process and ``workers - 1`` worker
  processes (each with one onnxruntime thread) analyse at the same time, each decoding its own range; the
  rows come back in order. Many photos are shared out the same way. Short inputs stay in this process.
  Frames and times are those of one pass; values after a range start can differ slightly, because the range
  detects its faces afresh where one pass follows them with the mesh (``workers=1`` for values that do not
  depend on the number of processes).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import math
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import cv2
import numpy as np

from ferkit.errors import FerkitError, InputError
from ferkit.results import AnalysisResults, FaceTable, SourceStatus

if TYPE_CHECKING:
    from ferkit.inference import ExpressionModel

__all__ = [
    "DEFAULT_DETECT_INTERVAL_S",
    "Analyzer",
    "FaceTracker",
    "analyze",
]

#: Auto ``detect_every``: run the detector about this often (seconds of video) when following faces.
DEFAULT_DETECT_INTERVAL_S = 0.2
#: Analysed frames further apart than this are not followed with the mesh (the detector runs on each).
MAX_TRACK_GAP_S = 0.1
#: Mesh presence below which a followed face is dropped (MediaPipe's value).
TRACK_PRESENCE = 0.5
#: Inputs at most this long side and near-square may be face crops (checked by detection on a padded copy).
CROP_MAX_SIDE = 160
#: Near-square inputs at most this long side are taken as face crops unless blank (too small to search).
CROP_TINY_SIDE = 64
#: A face crop's detection (on the padded copy) covers at least this fraction of the image side.
CROP_MIN_COVER = 0.45
#: Photos with a longer side above this are also searched in overlapping tiles (small faces in big photos:
#: BlazeFace sees the whole image at 192 px and misses faces under ~1/18 of its longer side).
TILE_MIN_SIDE = 1600
#: Target tile side in pixels (tiles overlap by a quarter).
TILE_SIDE = 1024
#: Smallest / largest time range (in analysed frames) given to one process when a video is split.
CHUNK_MIN_FRAMES = 48
CHUNK_MAX_FRAMES = 1024
#: ...and at most this many decoded frames (sparse sampling: decoding is then most of the work).
CHUNK_MAX_DECODED = 8192
#: Images per detector call.
DETECT_BATCH = 4
#: Frames held for one batched detection: at most ``batch_size`` and this many bytes (4 HD frames).
BATCH_MAX_BYTES = 4 * 1920 * 1080 * 3

DetectMode = bool | Literal["auto"]
ImageInput = str | os.PathLike[str] | np.ndarray | Any


class FaceTracker(Protocol):
    """Hook for a tracker that assigns face ids stable across frames (``Analyzer(tracker=...)``).

    ``reset(source)`` is called before each source; ``assign(table)`` for each :class:`FaceTable` of that
    source in frame order, returning the ids (int, one per row) that replace the per-frame ``face_id``.
    """

    def reset(self, source: str) -> None: ...

    def assign(self, table: FaceTable) -> np.ndarray: ...


# ================================================================================================ config


@dataclass(frozen=True)
class _Config:
    detector: str = "blazeface"
    score_threshold: float | None = None
    min_face_size: float = 0.0
    max_faces: int | None = None
    model: str = "default"
    every: int = 1
    fps: float | None = None
    start: float | None = None
    end: float | None = None
    detect_every: int | None = None
    detect: DetectMode = "auto"
    min_presence: float = 0.5
    confident_score: float = 0.75
    landmarks: bool = False
    batch_size: int = 16
    max_pixels: int | None = 40_000_000

    def check(self) -> None:
        if int(self.every) != self.every or self.every < 1:
            raise InputError(f"every must be a positive integer, got {self.every!r}")
        if self.fps is not None and not self.fps > 0:
            raise InputError(f"fps must be > 0, got {self.fps!r}")
        if self.fps is not None and self.every != 1:
            raise InputError("give either every or fps, not both")
        if self.detect_every is not None and (int(self.detect_every) != self.detect_every or self.detect_every < 1):
            raise InputError(f"detect_every must be a positive integer, got {self.detect_every!r}")
        if self.start is not None and not (self.start >= 0 and math.isfinite(self.start)):
            raise InputError(f"start must be a time >= 0 in seconds, got {self.start!r}")
        if self.end is not None and not self.end > (self.start or 0.0):
            raise InputError(f"end must be after start, got {self.end!r}")
        if self.detect not in (True, False, "auto"):
            raise InputError(f"detect must be True, False or 'auto', got {self.detect!r}")
        if not 0.0 <= self.min_presence <= 1.0:
            raise InputError(f"min_presence must be in [0, 1], got {self.min_presence!r}")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size!r}")
        if self.max_pixels is not None and not self.max_pixels >= 1:
            raise InputError(f"max_pixels must be >= 1 (or None: no limit), got {self.max_pixels!r}")


# ================================================================================================ engine


def crop_sharpness(crops: np.ndarray) -> np.ndarray:
    """Variance of the 4-neighbour Laplacian of each face crop ``(n, S, S[, 3])`` uint8 -> ``(n,)`` float32."""
    c = crops.astype(np.float32)
    if c.ndim == 4:
        c = c @ np.array([0.114, 0.587, 0.299], np.float32)  # BGR -> grey
    lap = 4 * c[:, 1:-1, 1:-1] - c[:, :-2, 1:-1] - c[:, 2:, 1:-1] - c[:, 1:-1, :-2] - c[:, 1:-1, 2:]
    return lap.reshape(len(c), -1).var(1).astype(np.float32)


@dataclass
class _Faces:
    """Faces of one frame before classification."""

    index: int
    time_s: float
    boxes: np.ndarray  # (n, 4) float32
    scores: np.ndarray  # (n,) float32
    crops: np.ndarray  # (n, S, S[, 3]) uint8
    points: np.ndarray | None  # (n, 468, 2) float32, NaN rows where the mesh failed
    image: np.ndarray | None = None  # kept only for annotation
    regions: np.ndarray | None = None  # (n, R, 4) mesh-placed region boxes, for models that take them


@dataclass
class _Track:
    roi: np.ndarray  # next mesh ROI (cx, cy, side, angle)
    ref_box: np.ndarray  # detector box at the last detection
    ref_roi: np.ndarray  # mesh ROI (from landmarks) at that same frame
    score: float
    box: np.ndarray  # last output box


class _Engine:
    """Models and the per-frame work; one per process (instances reuse buffers: not thread-safe)."""

    def __init__(self, cfg: _Config) -> None:
        from ferkit.face import FaceMesh, create_detector
        from ferkit.inference import ExpressionModel

        self.cfg = cfg
        kw: dict[str, Any] = {"min_face_size": cfg.min_face_size, "max_faces": cfg.max_faces}
        if cfg.score_threshold is not None:
            kw["score_threshold"] = cfg.score_threshold
        self.detector = create_detector(cfg.detector, **kw)
        self.mesh = FaceMesh()
        self.model = ExpressionModel.load(cfg.model)
        self.size = self.model.input_size
        self.grey = self.model.channels == 1
        self.classes = self.model.classes

    # -- classification ---------------------------------------------------------------------------------------
    def classify(self, frames: Sequence[_Faces], source: str) -> FaceTable:
        """One model call for all faces of ``frames``; returns their rows."""
        counts = [len(f.boxes) for f in frames]
        n = sum(counts)
        if n == 0:
            return FaceTable.empty(source, len(self.classes), self.cfg.landmarks)
        crops = np.concatenate([f.crops for f in frames if len(f.boxes)])
        boxes = None
        if self.model.wants_boxes:
            boxes = np.concatenate([f.regions for f in frames if len(f.boxes)])
        probs = self.model.predict(crops, boxes=boxes)
        sharp = crop_sharpness(crops)
        lm = None
        if self.cfg.landmarks:
            lm = np.concatenate([f.points if f.points is not None else np.full((len(f.boxes), 468, 2), np.nan,
                                                                               np.float32)
                                 for f in frames if len(f.boxes)])
        return FaceTable(
            source,
            np.repeat(np.array([f.index for f in frames], np.int64), counts),
            np.repeat(np.array([f.time_s for f in frames], np.float64), counts),
            np.concatenate([np.arange(c, dtype=np.int32) for c in counts]),
            np.concatenate([f.boxes for f in frames if len(f.boxes)]).astype(np.float32),
            np.concatenate([f.scores for f in frames if len(f.boxes)]).astype(np.float32),
            probs.astype(np.float32),
            lm,
            sharp,
        )

    def _to_model(self, crops: np.ndarray) -> np.ndarray:
        """BGR crops (n, S, S, 3) -> what the model takes (grey (n, S, S) for grey models)."""
        if self.grey and len(crops):
            return cv2.cvtColor(crops.reshape(-1, self.size, 3), cv2.COLOR_BGR2GRAY).reshape(-1, self.size, self.size)
        return crops

    # -- faces of one image -----------------------------------------------------------------------------------
    def _align(self, img: np.ndarray, dets: Any, marks: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """Model-ready aligned crops and, for models that take them, region boxes placed by the mesh points
        mapped into each crop (template boxes where the mesh failed)."""
        from ferkit.face import align_faces

        crops, mats = align_faces(img, dets, (self.size, self.size), landmarks=marks, min_presence=TRACK_PRESENCE)
        regions = None
        if self.model.wants_boxes:
            from ferkit.face.regions import boxes_from_mesh

            pts = marks.points[..., :2].astype(np.float64)
            crop_pts = np.einsum("nij,npj->npi", mats[:, :, :2], pts) + mats[:, None, :, 2]
            regions = boxes_from_mesh(crop_pts.astype(np.float32), self.size, self.model.region_names,
                                      presence=marks.presence, min_presence=TRACK_PRESENCE)
        return self._to_model(crops), regions

    def _points(self, marks: Any) -> np.ndarray | None:
        if not self.cfg.landmarks:
            return None
        pts = marks.points[..., :2].copy()
        pts[marks.presence < TRACK_PRESENCE] = np.nan
        return pts

    def crop_faces(self, img: np.ndarray, index: int = 0, time_s: float = 0.0) -> _Faces:
        """The whole image is the face (``detect=False`` or an input recognised as a face crop)."""
        h, w = img.shape[:2]
        s = self.size
        crop = cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA if min(h, w) > s else cv2.INTER_LINEAR)
        points = regions = None
        if self.cfg.landmarks or self.model.wants_boxes:
            marks = self.mesh.run(img, np.array([[w / 2, h / 2, max(w, h), 0.0]], np.float32))
            points = self._points(marks)
            if self.model.wants_boxes:
                from ferkit.face.regions import boxes_from_mesh

                crop_pts = marks.points[..., :2] * np.array([s / w, s / h], np.float32)
                regions = boxes_from_mesh(crop_pts, s, self.model.region_names, presence=marks.presence,
                                          min_presence=TRACK_PRESENCE)
        return _Faces(index, time_s, np.array([[0, 0, w, h]], np.float32), np.full(1, np.nan, np.float32),
                      self._to_model(crop[None]), points, regions=regions)

    def _small_image(self, img: np.ndarray) -> tuple[bool, Any]:
        """For a small near-square image: (is a face crop, detections mapped back) from a padded copy."""
        from ferkit.face import Detections

        h, w = img.shape[:2]
        if max(h, w) <= CROP_TINY_SIDE:
            return float(img.std()) >= 4.0, None  # too small to search: a face crop unless it is blank
        py, px = h // 2, w // 2
        pad = cv2.copyMakeBorder(img, py, py, px, px, cv2.BORDER_REPLICATE)
        dets = self.detector.detect(pad)
        if len(dets):
            b = dets.boxes
            cx, cy = b[:, 0] + b[:, 2] / 2 - px, b[:, 1] + b[:, 3] / 2 - py
            inside = (cx > 0) & (cx < w) & (cy > 0) & (cy < h)
            cover = np.maximum(b[:, 2], b[:, 3]) / max(h, w)
            if (inside & (cover >= CROP_MIN_COVER)).any():
                return True, None
            kps = None if dets.keypoints is None else dets.keypoints - np.array([px, py], np.float32)
            shifted = b.copy()
            shifted[:, 0] -= px
            shifted[:, 1] -= py
            dets = Detections(shifted, dets.scores, kps, dets.keypoint_names)[inside]
        return False, dets

    def image_faces(self, images: Sequence[np.ndarray], video: bool = False,
                    indices: Sequence[int] | None = None, times: Sequence[float] | None = None) -> list[_Faces]:
        """Faces of independent images (photos, or video frames without following): batched detect + mesh."""
        from ferkit.face import Detections

        n = len(images)
        indices = indices if indices is not None else [0] * n
        times = times if times is not None else [0.0] * n
        out: list[_Faces | None] = [None] * n
        detect = self.cfg.detect
        todo: list[int] = []
        given: dict[int, Any] = {}
        for i, img in enumerate(images):
            if detect is False:
                out[i] = self.crop_faces(img, indices[i], times[i])
                continue
            if detect == "auto" and not video:
                h, w = img.shape[:2]
                if max(h, w) <= CROP_MAX_SIDE and min(h, w) >= 0.75 * max(h, w):
                    is_crop, dets = self._small_image(img)
                    if is_crop:
                        out[i] = self.crop_faces(img, indices[i], times[i])
                        continue
                    given[i] = dets
            todo.append(i)
        if todo:
            need = [i for i in todo if i not in given]
            found = []  # small detector batches: bigger ones are no faster and grow onnxruntime's arena
            for a in range(0, len(need), DETECT_BATCH):
                found += self.detector.detect_batch([images[i] for i in need[a:a + DETECT_BATCH]])
            dets_by = dict(zip(need, found))
            dets_by.update(given)
            tiled: dict[int, int] = {}  # image -> number of its detections found on the whole image
            if not video:
                for i in need:
                    if max(images[i].shape[:2]) > TILE_MIN_SIDE:
                        tiled[i] = len(dets_by[i])
                        dets_by[i] = self._add_tile_detections(images[i], dets_by[i])
            dets_list = [dets_by[i] if dets_by[i] is not None else Detections.empty(self.detector.keypoint_names)
                         for i in todo]  # None: a blank tiny image
            marks_list = self.mesh.run_batch([images[i] for i in todo], dets_list)
            for i, dets, marks in zip(todo, dets_list, marks_list):
                if (video or i in tiled) and len(dets):
                    keep = (marks.presence >= self.cfg.min_presence) | (dets.scores >= self.cfg.confident_score)
                    if i in tiled:
                        keep[: tiled[i]] = True  # found on the whole photo: kept as in any photo
                    if not keep.all():
                        dets, marks = dets[keep], marks[keep]
                    if i in tiled and self.cfg.max_faces is not None and len(dets) > self.cfg.max_faces:
                        order = np.argsort(-dets.scores, kind="stable")[: self.cfg.max_faces]
                        dets, marks = dets[order], marks[order]
                if len(dets) == 0:
                    out[i] = self.no_faces(indices[i], times[i])
                    continue
                crops, regions = self._align(images[i], dets, marks)
                out[i] = _Faces(indices[i], times[i], dets.boxes, dets.scores, crops, self._points(marks),
                                regions=regions)
        return out  # type: ignore[return-value]

    def _add_tile_detections(self, img: np.ndarray, dets: Any) -> Any:
        """``dets`` (whole image) followed by the faces found only in overlapping tiles (mapped back)."""
        from ferkit.face import Detections

        h, w = img.shape[:2]
        tiles, offsets = [], []
        for n_, size_ in ((math.ceil(w / (0.75 * TILE_SIDE)), w), (math.ceil(h / (0.75 * TILE_SIDE)), h)):
            offsets.append((max(1, n_), size_))
        (nx, _), (ny, _) = offsets
        tw, th = min(w, round(1.25 * w / nx)), min(h, round(1.25 * h / ny))
        xs = np.linspace(0, w - tw, nx).round().astype(int) if nx > 1 else [0]
        ys = np.linspace(0, h - th, ny).round().astype(int) if ny > 1 else [0]
        corners = [(int(x), int(y)) for y in ys for x in xs]
        tiles = [img[y:y + th, x:x + tw] for x, y in corners]
        found = []
        for a in range(0, len(tiles), DETECT_BATCH):
            found += self.detector.detect_batch(tiles[a:a + DETECT_BATCH])
        boxes, scores, kps = [dets.boxes], [dets.scores], [dets.keypoints]
        for (x, y), d in zip(corners, found):
            if len(d):
                b = d.boxes.copy()
                b[:, :2] += (x, y)
                boxes.append(b)
                scores.append(d.scores)
                kps.append(None if d.keypoints is None else d.keypoints + np.array([x, y], np.float32))
        if len(boxes) == 1:
            return dets
        allb, alls = np.concatenate(boxes), np.concatenate(scores)
        allk = None if any(k is None for k in kps) else np.concatenate(kps)
        n0 = len(dets)
        keep = list(range(n0))
        for j in n0 + np.argsort(-alls[n0:], kind="stable"):  # tile finds, best first, if not already found
            if not keep or _iou(allb[j:j + 1], allb[keep]).max() <= 0.3:
                keep.append(int(j))
        return Detections(allb[keep], alls[keep], None if allk is None else allk[keep], dets.keypoint_names)

    def no_faces(self, index: int, time_s: float) -> _Faces:
        s = self.size
        return _Faces(index, time_s, np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                      np.zeros((0, s, s) if self.grey else (0, s, s, 3), np.uint8),
                      np.zeros((0, 468, 2), np.float32) if self.cfg.landmarks else None)

    # -- following faces in a video ---------------------------------------------------------------------------
    def track_frame(self, st: _TrackState, img: np.ndarray, index: int, time_s: float) -> _Faces:
        """Faces of the next video frame, following the faces of the previous one with the mesh."""
        from ferkit.face import Detections, Landmarks, rois_from_detections, rois_from_landmarks

        cfg = self.cfg
        tracks = st.tracks
        do_detect = st.need_detect or not tracks or st.count % st.detect_every == 0
        st.count += 1
        st.need_detect = False
        n_old = len(tracks)
        det_box: dict[int, tuple[np.ndarray, float, np.ndarray | None]] = {}  # slot -> box, score, key points
        new_rois: list[np.ndarray] = []
        new_info: list[tuple[np.ndarray, float, np.ndarray | None]] = []
        if do_detect:
            dets = self.detector.detect(img)
            if len(dets):
                matched = np.full(len(dets), -1)
                if n_old:
                    iou = _iou(dets.boxes, np.stack([t.box for t in tracks]))
                    for d in np.argsort(-dets.scores):
                        j = int(iou[d].argmax())
                        if iou[d, j] > 0.3 and j not in det_box:
                            det_box[j] = (dets.boxes[d], float(dets.scores[d]),
                                          None if dets.keypoints is None else dets.keypoints[d])
                            matched[d] = j
                fresh = dets[matched < 0]  # sorted by score (detector output)
                if cfg.max_faces is not None:
                    fresh = fresh[: max(0, cfg.max_faces - n_old)]
                if len(fresh):
                    new_rois = list(rois_from_detections(fresh, self.mesh.roi_scale))
                    new_info = [(fresh.boxes[i], float(fresh.scores[i]),
                                 None if fresh.keypoints is None else fresh.keypoints[i]) for i in range(len(fresh))]
        rois = [t.roi for t in tracks] + new_rois
        if not rois:
            return self.no_faces(index, time_s)
        marks = self.mesh.run(img, np.stack(rois).astype(np.float32))
        presence = marks.presence
        cur_rois = rois_from_landmarks(marks.points, self.mesh.roi_scale)
        keep_slots: list[int] = []
        boxes, scores = [], []
        next_tracks: list[_Track] = []
        kps_names = self.detector.keypoint_names
        kps: list[np.ndarray] = []
        for j in range(len(rois)):
            p = float(presence[j])
            if j < n_old:
                t = tracks[j]
                if p < TRACK_PRESENCE:
                    st.need_detect = True  # lost: look again on the next frame
                    continue
                if j in det_box:
                    b, s, kp = det_box[j]
                    t.ref_box, t.ref_roi, t.score = b.copy(), cur_rois[j].copy(), s
                    box = b
                else:
                    box = _move_box(t.ref_box, t.ref_roi, cur_rois[j])
                    kp = None
                t.roi, t.box = cur_rois[j], box
                next_tracks.append(t)
                score = t.score
            else:
                b, s, kp = new_info[j - n_old]
                if p < cfg.min_presence and s < cfg.confident_score:
                    continue  # not confirmed by the mesh: e.g. letters of an animated title
                if next_tracks and _iou(_roi_box(cur_rois[j:j + 1]),
                                        _roi_box(np.stack([t.roi for t in next_tracks]))).max() > 0.5:
                    continue  # a face already followed (it moved too far for its box to match)
                box, score = b, s
                if p >= TRACK_PRESENCE:
                    next_tracks.append(_Track(cur_rois[j], b.copy(), cur_rois[j].copy(), s, b))
                else:
                    st.need_detect = True  # kept on the detector's word only: cannot be followed
            keep_slots.append(j)
            boxes.append(box)
            scores.append(score)
            kps.append(kp if kp is not None else np.zeros((max(len(kps_names), 1), 2), np.float32))
        st.tracks = _dedupe(next_tracks)
        if not keep_slots:
            return self.no_faces(index, time_s)
        sel = np.array(keep_slots)
        m = Landmarks(marks.points[sel], presence[sel], marks.rois[sel])
        dets = Detections(np.stack(boxes), np.array(scores, np.float32), np.stack(kps) if kps_names else None,
                          kps_names)
        crops, regions = self._align(img, dets, m)
        return _Faces(index, time_s, dets.boxes, dets.scores, crops, self._points(m), regions=regions)


@dataclass
class _TrackState:
    detect_every: int
    count: int = 0
    need_detect: bool = True
    tracks: list[_Track] = field(default_factory=list)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of (n, 4) and (m, 4) x, y, w, h boxes."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return inter / np.maximum(union, 1e-9)


def _move_box(ref_box: np.ndarray, ref_roi: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """The detector box of a followed face: its last detector box, moved and scaled like the mesh ROI."""
    k = float(roi[2]) / max(float(ref_roi[2]), 1e-6)
    cx = roi[0] + (ref_box[0] + ref_box[2] / 2 - ref_roi[0]) * k
    cy = roi[1] + (ref_box[1] + ref_box[3] / 2 - ref_roi[1]) * k
    w, h = ref_box[2] * k, ref_box[3] * k
    return np.array([cx - w / 2, cy - h / 2, w, h], np.float32)


def _roi_box(rois: np.ndarray) -> np.ndarray:
    """(n, 4) x, y, w, h squares of (n, 4) mesh ROIs (rotation ignored)."""
    return np.concatenate([rois[:, :2] - rois[:, 2:3] / 2, rois[:, 2:3], rois[:, 2:3]], axis=1)


def _dedupe(tracks: list[_Track]) -> list[_Track]:
    """Drop a followed face whose ROI overlaps an older one (two tracks converged on one face)."""
    if len(tracks) < 2:
        return tracks
    sq = _roi_box(np.stack([t.roi for t in tracks]))
    iou = _iou(sq, sq)
    keep: list[int] = []
    for i in range(len(tracks)):
        if all(iou[i, j] <= 0.5 for j in keep):
            keep.append(i)
    return [tracks[i] for i in keep]


# ================================================================================================ tasks

_ENGINE: _Engine | None = None  # the engine of a worker process


@dataclass(frozen=True)
class _ImageTask:
    items: tuple[tuple[int, str], ...]  # (source index, path)
    annotate: tuple[str, ...] | None = None  # annotated-output path per item


@dataclass(frozen=True)
class _VideoTask:
    src: int
    path: str
    start: float | None
    end: float | None
    every: int
    fps: float | None
    detect_every: int
    grid: tuple[float, int, int | None] | None = None  # with fps, in a split pass: (origin, first, end) indices


@dataclass
class _ImageDone:
    src: int
    table: FaceTable | None
    error: str | None = None


@dataclass
class _VideoDone:
    """Rows and reading status of a video time range (or, in one pass, of one batch: ``final=False``)."""

    src: int
    table: FaceTable
    frames: int
    frames_with_faces: int
    complete: bool = True
    error: str | None = None
    stopped_at_s: float | None = None
    final: bool = True
    frames_lost: int = 0  # frames of the range that could not be decoded (damaged stretches)


def _analyze_image_task(engine: _Engine, task: _ImageTask) -> list[_ImageDone]:
    from ferkit.io import load_image

    cfg = engine.cfg
    loaded: list[tuple[int, str, np.ndarray]] = []
    scales: dict[int, float] = {}  # < 1 for photos analysed downscaled (over max_pixels)
    errors: dict[int, str] = {}
    for src, path in task.items:
        try:
            img, info = load_image(path, max_pixels=cfg.max_pixels, return_info=True)
            loaded.append((src, path, img))
            scales[src] = info.scale
        except (FerkitError, OSError, MemoryError, ValueError) as exc:
            errors[src] = _one_line(exc)
    try:
        faces = engine.image_faces([im for _, _, im in loaded]) if loaded else []
    except Exception:  # noqa: BLE001 - one odd image must not sink the batch: retry one by one
        faces = []
        for src, _, im in loaded:
            try:
                faces.append(engine.image_faces([im])[0])
            except Exception as exc:  # noqa: BLE001
                errors[src] = f"analysis failed: {_one_line(exc)}"
                faces.append(engine.no_faces(0, 0.0))
    tables = {src: engine.classify([f], path) for (src, path, _), f in zip(loaded, faces) if src not in errors}
    for src, t in tables.items():  # coordinates of the full-size photo, whatever size it was analysed at
        if scales.get(src, 1.0) != 1.0:
            t.boxes = (t.boxes / scales[src]).astype(np.float32)
            if t.landmarks is not None:
                t.landmarks = (t.landmarks / scales[src]).astype(np.float32)
    if task.annotate is not None:
        from ferkit.annotate import annotate_image

        outputs = dict(zip((src for src, _ in task.items), task.annotate))
        for src, _, img in loaded:
            if src in tables:
                try:
                    annotate_image(img, tables[src], engine.classes, outputs[src], scale=scales.get(src, 1.0))
                except (OSError, FerkitError) as exc:
                    errors[src] = f"cannot write the annotated image: {_one_line(exc)}"
    return [_ImageDone(src, tables.get(src), errors.get(src)) for src, _ in task.items]


def _video_batches(engine: _Engine, task: _VideoTask, keep_images: bool = False
                   ) -> Iterator[tuple[FaceTable, list[_Faces]] | _VideoDone]:
    """Analyse one time range of a video: yields ``(rows, faces)`` per batch of frames, then a final
    :class:`_VideoDone` (empty table) with the reading status. Raises InputError if it cannot be opened."""
    from ferkit.io.video import FrameStream

    cfg = engine.cfg
    stream = FrameStream(task.path, every=task.every, fps=task.fps, start=task.start, end=task.end, grid=task.grid)
    st = _TrackState(task.detect_every)
    batch: list[_Faces] = []
    pending: list[Any] = []  # frames waiting for a batched detection (detect_every == 1)
    pending_bytes = 0
    n_frames = n_with = 0

    def flush() -> tuple[FaceTable, list[_Faces]] | None:
        nonlocal batch
        if pending:
            faces = engine.image_faces([f.image for f in pending], video=True, indices=[f.index for f in pending],
                                       times=[f.time_s for f in pending])
            if keep_images:
                for fa, fr in zip(faces, pending):
                    fa.image = fr.image
            batch.extend(faces)
            pending.clear()
        if not batch:
            return None
        out = engine.classify(batch, task.path), batch
        batch = []
        return out

    with stream:
        for fr in stream:
            n_frames += 1
            if cfg.detect is False:
                f = engine.crop_faces(fr.image, fr.index, fr.time_s)
            elif task.detect_every == 1:
                pending.append(fr)
                pending_bytes += fr.image.nbytes
                if len(pending) >= cfg.batch_size or pending_bytes >= BATCH_MAX_BYTES:
                    pending_bytes = 0
                    item = flush()
                    if item is not None:
                        n_with += sum(1 for x in item[1] if len(x.boxes))
                        yield item
                continue
            else:
                f = engine.track_frame(st, fr.image, fr.index, fr.time_s)
            if keep_images:
                f.image = fr.image
            batch.append(f)
            if len(batch) >= cfg.batch_size:
                item = flush()
                if item is not None:
                    n_with += sum(1 for x in item[1] if len(x.boxes))
                    yield item
        item = flush()
        if item is not None:
            n_with += sum(1 for x in item[1] if len(x.boxes))
            yield item
    yield _VideoDone(task.src, FaceTable.empty(task.path, len(engine.classes), cfg.landmarks), n_frames, n_with,
                     stream.complete, stream.error, stream.stopped_at_s, frames_lost=stream.frames_lost)


def _video_range(engine: _Engine, task: _VideoTask) -> _VideoDone:
    """A whole time range at once (what a worker returns)."""
    tables: list[FaceTable] = []
    frames = with_faces = 0
    last_t: float | None = None
    try:
        for item in _video_batches(engine, task):
            if isinstance(item, _VideoDone):
                if tables:
                    item.table = FaceTable.concat(tables)
                return item
            table, faces = item
            frames += len(faces)
            with_faces += sum(1 for f in faces if len(f.boxes))
            last_t = faces[-1].time_s
            if len(table):
                tables.append(table)
        raise AssertionError("unreachable")  # pragma: no cover
    except FerkitError as exc:
        reason = _one_line(exc)
    except Exception as exc:  # noqa: BLE001 - an odd frame must not end a batch of many files
        reason = f"analysis failed: {_one_line(exc)}"
    table = FaceTable.concat(tables) if tables else FaceTable.empty(task.path, len(engine.classes),
                                                                    engine.cfg.landmarks)
    return _VideoDone(task.src, table, frames, with_faces, False, reason, last_t)


def _run_task(engine: _Engine, task: _ImageTask | _VideoTask | _VideoDone) -> Any:
    if isinstance(task, _VideoDone):  # a video that could not be opened: its result is known
        return task
    if isinstance(task, _ImageTask):
        return _analyze_image_task(engine, task)
    return _video_range(engine, task)


def _worker_init(cfg: _Config) -> None:
    global _ENGINE
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the main process (which stops the pool)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker must not run the CLI's handler (the parent's)
    cv2.setNumThreads(1)
    with contextlib.suppress(ImportError, AttributeError):  # forked: do not share the parent's ORT sessions
        from ferkit.face import _ort

        _ort._SESSIONS.clear()
    _ENGINE = _Engine(cfg)


def _worker_run(task: _ImageTask | _VideoTask) -> Any:
    assert _ENGINE is not None
    return _run_task(_ENGINE, task)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "not enough memory to decode it"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


# ================================================================================================ runner


class _Runner:
    """Runs tasks in this process and in ``workers - 1`` worker processes; results come back in task order.

    This process runs a task itself whenever the workers already have one queued each, so short inputs never
    wait for the workers to start.
    """

    def __init__(self, engine: Callable[[], _Engine], cfg: _Config, workers: int) -> None:
        self._engine = engine
        self.cfg = cfg
        self.workers = max(1, int(workers))
        self._pool: cf.ProcessPoolExecutor | None = None

    def _start(self) -> cf.ProcessPoolExecutor | None:
        if self.workers < 2:
            return None
        if self._pool is None:
            import multiprocessing as mp

            # fork on Linux: instant, and a user's script without the ``if __name__ == "__main__"`` guard is not
            # run again in the workers (spawn / forkserver re-import it). Workers build their own sessions.
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            self._pool = cf.ProcessPoolExecutor(self.workers - 1, mp_context=mp.get_context(method),
                                                initializer=_worker_init, initargs=(self.cfg,))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run(self, tasks: Iterable[Any], parallel: bool = True) -> Iterator[Any]:
        """Results of ``tasks`` in order (a generator: tasks are taken from the iterable as needed).

        A task whose worker process died (killed, out of memory) is run again in this process, and the pool is
        not used again.
        """
        pool = self._start() if parallel else None
        it = iter(tasks)
        pending: deque[tuple[cf.Future | None, Any, Any]] = deque()  # (future, result, task)
        in_pool = 0
        exhausted = False
        try:
            while True:
                while pending and (pending[0][0] is None or pending[0][0].done()):
                    fut, value, task = pending.popleft()
                    if fut is not None:
                        in_pool -= 1
                        try:
                            value = fut.result()
                        except cf.process.BrokenProcessPool:
                            pool = None
                            self.close()
                            value = _run_task(self._engine(), task)
                    yield value
                if exhausted:
                    if not pending:
                        return
                    cf.wait([pending[0][0]])
                    continue
                task = next(it, None)
                if task is None:
                    exhausted = True
                    continue
                if pool is not None and in_pool < 2 * (self.workers - 1):
                    try:
                        pending.append((pool.submit(_worker_run, task), None, task))
                        in_pool += 1
                        continue
                    except (cf.process.BrokenProcessPool, RuntimeError):
                        pool = None
                        self.close()
                pending.append((None, _run_task(self._engine(), task), task))
        finally:
            for fut, _, _ in pending:
                if fut is not None:
                    fut.cancel()


# ================================================================================================ analyzer


@dataclass
class _Source:
    name: str
    kind: str  # image | video | array
    path: Path | None = None
    array: np.ndarray | None = None
    error: str | None = None
    annotate_to: str | None = None  # annotated-output path (with --annotate)


class Analyzer:
    """Facial expression analysis of photos, videos, folders and arrays, with the models kept loaded.

    One analyzer serves one thread at a time (use one per thread).

    >>> with Analyzer() as az:                                   # doctest: +SKIP
    ...     res = az.analyze("talk.mp4")
    ...     df = res.to_pandas()

    Args:
        detector: face detector name (``blazeface``, the default; ``mtcnn``; ``blazeface_short``).
        score_threshold: detector score threshold (``None``: the detector's default, 0.5 for BlazeFace).
        min_face_size: ignore faces smaller than this many pixels (shorter box side).
        max_faces: keep at most this many faces per frame (best scores).
        model: expression model: a shipped name (``default``), a path to ``.onnx`` with its ``.json`` card, or a
            loaded :class:`~ferkit.inference.ExpressionModel` (its file).
        every: analyse every Nth video frame.
        fps: instead of ``every``, analyse video frames at this rate (nearest frames to a regular grid).
        start, end: time range of videos to analyse, in seconds.
        detect_every: run the detector every N analysed video frames and follow faces with the mesh in between;
            ``None``: about every 0.2 s when analysed frames are at most 0.1 s apart, else every frame.
        detect: ``"auto"`` (face-crop inputs recognised), ``False``: every input is a face crop.
        min_presence: in videos (and for faces found only in tiles of a large photo), a detection is kept when
            the face mesh confirms it with at least this face-presence score...
        confident_score: ...or when its detector score is at least this.
        landmarks: keep the 468 mesh points (``landmarks`` column).
        sentiment_map: ``valence`` (default), ``debate`` or a dict class -> negative/neutral/positive.
        batch_size: frames per model batch.
        workers: processes to use (this one included); ``None``: the number of CPU cores (at most 4). Worker
            processes start on first need (a long video, several photos) and stay until :meth:`close`.
        tracker: a :class:`FaceTracker` that assigns stable face ids (default: ids per frame).
        max_pixels: downscale larger photos to this many pixels while decoding.
    """

    def __init__(self, *, detector: str = "blazeface", score_threshold: float | None = None,
                 min_face_size: float = 0.0, max_faces: int | None = None,
                 model: str | os.PathLike[str] | ExpressionModel = "default",
                 every: int = 1, fps: float | None = None, start: float | None = None, end: float | None = None,
                 detect_every: int | None = None, detect: DetectMode = "auto", min_presence: float = 0.5,
                 confident_score: float = 0.75, landmarks: bool = False,
                 sentiment_map: str | dict[str, str] = "valence", batch_size: int = 16, workers: int | None = None,
                 tracker: FaceTracker | None = None, max_pixels: int | None = 40_000_000) -> None:
        from ferkit.labels import SENTIMENT_MAPS

        if isinstance(sentiment_map, str) and sentiment_map not in SENTIMENT_MAPS:
            raise InputError(f"unknown sentiment map {sentiment_map!r}; use one of {', '.join(SENTIMENT_MAPS)}")
        onnx_path = getattr(model, "onnx_path", None)
        if onnx_path is not None:  # a loaded ExpressionModel: its file (worker processes load their own)
            model = onnx_path
        if not isinstance(model, (str, os.PathLike)):
            raise InputError(f"model must be a shipped model name or an .onnx path, got {type(model).__name__}")
        self.cfg = _Config(detector=detector, score_threshold=score_threshold, min_face_size=float(min_face_size),
                           max_faces=max_faces, model=os.fspath(model), every=int(every), fps=fps, start=start,
                           end=end, detect_every=detect_every, detect=detect, min_presence=float(min_presence),
                           confident_score=float(confident_score), landmarks=bool(landmarks),
                           batch_size=int(batch_size), max_pixels=max_pixels)
        self.cfg.check()
        self.sentiment_map = sentiment_map
        self.tracker = tracker
        if workers is not None and (int(workers) != workers or workers < 1):
            raise InputError(f"workers must be a positive integer (or None: the CPU cores), got {workers!r}")
        self.workers = int(workers) if workers is not None else min(os.cpu_count() or 1, 4)
        self._runner: _Runner | None = None
        self._engine: _Engine | None = _Engine(self.cfg)  # load now: an unknown model or detector fails here

    # -- models ----------------------------------------------------------------------------------------------
    @property
    def engine(self) -> _Engine:
        if self._engine is None:
            self._engine = _Engine(self.cfg)
        return self._engine

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names of the expression model, in probability-column order."""
        return self.engine.classes

    @property
    def model_card(self) -> dict[str, Any]:
        """The expression model's card (classes, input, training data, metrics...)."""
        return self.engine.model.card

    @property
    def sentiment_matrix(self) -> np.ndarray:
        """(n_classes, 3) matrix summing class probabilities into negative / neutral / positive."""
        from ferkit.labels import sentiment_matrix

        return sentiment_matrix(self.classes, self.sentiment_map)

    def _get_runner(self) -> _Runner:
        if self._runner is None:
            self._runner = _Runner(lambda: self.engine, self.cfg, self.workers)
        return self._runner

    def close(self) -> None:
        """Stop the worker processes (the models of this process stay loaded)."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def __enter__(self) -> Analyzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- public API ------------------------------------------------------------------------------------------
    def analyze(self, inputs: ImageInput | Sequence[ImageInput], *, progress: bool = False,
                annotate: str | os.PathLike[str] | None = None, recursive: bool = True) -> AnalysisResults:
        """Analyse a photo, video, folder, list file, numpy array (BGR) or PIL image, or a list of those.

        Returns an :class:`~ferkit.results.AnalysisResults` with one row per face per analysed frame and a
        status per source. Bad inputs among several are reported in ``results.statuses`` (``failed`` with a
        one-line reason; ``partial`` for a video that stopped early), and the others are analysed; a single input
        (not a list) that cannot be analysed at all raises :class:`~ferkit.errors.InputError`.
        """
        res = AnalysisResults(self.classes, self.sentiment_map, with_landmarks=self.cfg.landmarks)
        for item in self.iter_analyze(inputs, progress=progress, annotate=annotate, recursive=recursive):
            if isinstance(item, FaceTable):
                res.add(item)
            else:
                res.statuses.append(item)
        if len(res.statuses) == 1 and res.statuses[0].status == "failed" and not isinstance(inputs, (list, tuple)):
            raise InputError(res.statuses[0].describe())
        return res

    def iter_analyze(self, inputs: ImageInput | Sequence[ImageInput], *, progress: bool = False,
                     annotate: str | os.PathLike[str] | None = None,
                     recursive: bool = True) -> Iterator[FaceTable | SourceStatus]:
        """Stream the analysis: :class:`FaceTable` chunks (in source and frame order) and, after the last chunk
        of each source, its :class:`SourceStatus`. Memory stays flat whatever the length of a video."""
        sources = _resolve(inputs, recursive)
        adir = os.fspath(annotate) if annotate is not None else None
        if adir is not None:
            try:
                Path(adir).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                from ferkit.errors import OutputError

                raise OutputError(f"cannot create folder {adir} for annotated output: {_one_line(exc)}") from None
            from ferkit.annotate import output_paths

            live = [s for s in sources if s.error is None]
            for s, out in zip(live, output_paths(adir, [(s.name, ".mp4" if s.kind == "video" else ".jpg")
                                                        for s in live])):
                s.annotate_to = str(out)
        runner = self._get_runner()
        bar = _progress(progress, sources)
        with _cv2_threads(1 if self.workers > 1 else None):
            try:
                yield from self._run(sources, runner, bar, adir)
            finally:
                if bar is not None:
                    bar.close()

    # -- scheduling ------------------------------------------------------------------------------------------
    def _run(self, sources: list[_Source], runner: _Runner, bar: Any, adir: str | None
             ) -> Iterator[FaceTable | SourceStatus]:
        i = 0
        while i < len(sources):
            s = sources[i]
            if s.error is not None:
                yield SourceStatus(s.name, s.kind, "failed", s.error)
                i += 1
                continue
            if s.kind == "array":
                yield from self._array(s, adir)
                _tick(bar, 1)
                i += 1
                continue
            j = i
            while j < len(sources) and sources[j].kind == s.kind and sources[j].error is None:
                j += 1
            if s.kind == "video":
                yield from self._videos(sources, i, j, runner, bar, adir)
            else:
                yield from self._images(sources, i, j, runner, bar, adir)
            i = j

    def _finish(self, s: _Source, table: FaceTable | None, status: SourceStatus) -> Iterator[Any]:
        if table is not None and len(table):
            if self.tracker is not None:
                table.face_id = np.asarray(self.tracker.assign(table), np.int32)
            yield table
        yield status

    def _array(self, s: _Source, adir: str | None) -> Iterator[Any]:
        eng = self.engine
        try:
            from ferkit.io import to_bgr

            img = to_bgr(s.array)
        except FerkitError as exc:
            yield SourceStatus(s.name, "image", "failed", _one_line(exc))
            return
        if self.tracker is not None:
            self.tracker.reset(s.name)
        faces = eng.image_faces([img])
        t = eng.classify(faces, s.name)
        if adir is not None:
            from ferkit.annotate import annotate_image

            annotate_image(img, t, eng.classes, s.annotate_to or os.path.join(adir, "image.jpg"))
        yield from self._finish(s, t, SourceStatus(s.name, "image", "ok" if len(t) else "no_face", frames=1,
                                                   frames_with_faces=int(len(t) > 0), faces=len(t)))

    def _images(self, sources: list[_Source], i: int, j: int, runner: _Runner, bar: Any,
                adir: str | None) -> Iterator[Any]:
        n = j - i
        per_task = max(1, min(8, math.ceil(n / (4 * runner.workers))))
        def task(a: int) -> _ImageTask:
            ks = range(a, min(a + per_task, j))
            return _ImageTask(tuple((k, str(sources[k].path)) for k in ks),
                              tuple(str(sources[k].annotate_to) for k in ks) if adir is not None else None)

        tasks = (task(a) for a in range(i, j, per_task))
        for done_list in runner.run(tasks, parallel=n >= 4):
            for d in done_list:
                s = sources[d.src]
                if self.tracker is not None:
                    self.tracker.reset(s.name)
                if d.table is None:
                    st = SourceStatus(s.name, "image", "failed", d.error)
                else:
                    nf = len(d.table)
                    st = SourceStatus(s.name, "image", "ok" if nf else "no_face", d.error, frames=1,
                                      frames_with_faces=int(nf > 0), faces=nf)
                yield from self._finish(s, d.table, st)
                _tick(bar, 1)

    def _video_plan(self, path: Path) -> tuple[Any, float | None, int]:
        """(VideoInfo, seconds between analysed frames or None, detect_every)."""
        from ferkit.io import probe_video

        info = probe_video(path)
        cfg = self.cfg
        if cfg.fps:
            gap: float | None = 1.0 / cfg.fps if not info.fps else max(1.0 / cfg.fps, 1.0 / info.fps)
        elif info.fps:
            gap = cfg.every / info.fps
        else:
            gap = None
        k = cfg.detect_every
        if k is None:
            k = 1 if gap is None or gap > MAX_TRACK_GAP_S else max(1, round(DEFAULT_DETECT_INTERVAL_S / gap))
        return info, gap, int(k)

    def _chunks(self, src: int, path: str, info: Any, k: int, workers: int) -> list[_VideoTask] | None:
        """Time ranges for parallel analysis, or None when the video is better analysed in one pass."""
        cfg = self.cfg
        if workers < 2 or info.backend != "pyav" or not info.fps or info.duration_s <= 0:
            return None
        if info.vfr or (info.n_frames and abs(info.n_frames - info.duration_s * info.fps) > 0.02 * info.n_frames + 2):
            return None  # variable frame rate: frame numbers are exact only in one pass
        t0 = cfg.start or 0.0
        t1 = min(cfg.end, info.duration_s) if cfg.end is not None else info.duration_s
        step = 1.0 / cfg.fps if cfg.fps else cfg.every / info.fps
        total = int((t1 - t0) / step)
        # sizes below in analysed frames, counted in grid points: above the video's rate a frame takes several points
        dense = max(1.0, cfg.fps / info.fps) if cfg.fps else 1.0
        min_chunk = math.ceil(max(CHUNK_MIN_FRAMES, 2 * k) * dense)
        if total < 3 * min_chunk:
            return None
        tasks: list[_VideoTask] = []
        done = 0
        first = math.ceil(t0 * info.fps - 1e-6)
        per = max(1.0, step * info.fps)  # decoded frames per analysed frame
        max_chunk = max(min_chunk, math.ceil(min(CHUNK_MAX_FRAMES, int(CHUNK_MAX_DECODED / per)) * dense))
        while done < total:
            left = total - done
            c = min(max(math.ceil(left / (2 * workers)), min_chunk), max_chunk)
            c = math.ceil(c / k) * k
            if left - c < min_chunk // 2:
                c = left
            last = done + c >= total
            grid = None
            if cfg.fps:
                # Grid points done .. done+c-1 of this range; frames decoded from a frame and a half before the
                # point before the first (followed, not emitted: see FrameStream) to a frame and a half after the
                # last, so each point sees the frames on both sides, as in one pass
                margin = 1.5 / info.fps
                a = t0 + (done - 1) / cfg.fps - margin
                b = t0 + (done + c - 1) / cfg.fps + margin
                grid = (t0, done, None if last else done + c)
            else:
                a = (first + done * cfg.every - 0.5) / info.fps
                b = (first + (done + c) * cfg.every - 0.5) / info.fps
            tasks.append(_VideoTask(src, path, max(a, 0.0) if done else cfg.start, cfg.end if last else b,
                                    cfg.every, cfg.fps, k, grid if done or not last else None))
            done += c
        return tasks

    def _plan_video(self, src: int, s: _Source, bar: Any, workers: int, adir: str | None
                    ) -> tuple[SourceStatus, list[Any], Any]:
        """(status, tasks, info): the time ranges of a video (one task when not split; a ready failed result when
        it cannot be opened)."""
        assert s.path is not None
        status = SourceStatus(s.name, "video")
        try:
            info, gap, k = self._video_plan(s.path)
        except FerkitError as exc:
            empty = FaceTable.empty(s.name, len(self.classes), self.cfg.landmarks)
            return status, [_VideoDone(src, empty, 0, 0, False, _one_line(exc), None)], None
        status.duration_s = info.duration_s or None
        if bar is not None and gap:
            t0 = self.cfg.start or 0.0
            t1 = min(self.cfg.end, info.duration_s) if self.cfg.end is not None else info.duration_s
            bar.total = (bar.total or 0) - 1 + max(1, round((t1 - t0) / gap))
            bar.refresh()
        tasks = None if adir is not None else self._chunks(src, str(s.path), info, k, workers)
        if tasks is None:
            tasks = [_VideoTask(src, str(s.path), self.cfg.start, self.cfg.end, self.cfg.every, self.cfg.fps, k)]
        return status, tasks, info

    def _collect(self, status: SourceStatus, results: Iterable[_VideoDone], bar: Any) -> Iterator[Any]:
        """Rows of a video's results in order, then its final status (ranges after an early stop are dropped)."""
        if self.tracker is not None:
            self.tracker.reset(status.source)
        stop_error: str | None = None
        last_stop: float | None = None
        for d in results:
            if stop_error is not None:
                continue  # an earlier range stopped early: later ranges are not reported
            status.frames += d.frames
            status.frames_with_faces += d.frames_with_faces
            status.faces += len(d.table)
            status.frames_lost += d.frames_lost
            if len(d.table):
                if self.tracker is not None:
                    d.table.face_id = np.asarray(self.tracker.assign(d.table), np.int32)
                yield d.table
            _tick(bar, d.frames)
            if not d.final:
                continue
            if not d.complete and d.error is not None:
                stop_error = d.error
                status.stopped_at_s = d.stopped_at_s if d.stopped_at_s is not None else last_stop
            if d.stopped_at_s is not None:
                last_stop = d.stopped_at_s
        if stop_error is not None:
            status.status = "partial" if status.frames else "failed"
            status.reason = stop_error
        else:
            status.status = "ok" if status.faces else "no_face"
            status.stopped_at_s = last_stop
        yield status

    def _videos(self, sources: list[_Source], i: int, j: int, runner: _Runner, bar: Any,
                adir: str | None) -> Iterator[Any]:
        """Videos ``i..j-1``: their time ranges (or whole short videos) shared between the processes."""
        if adir is not None or runner.workers < 2:
            for src in range(i, j):  # in this process, batch by batch (annotated videos are written here)
                status, tasks, info = self._plan_video(src, sources[src], bar, 1, adir)
                task = tasks[0]
                if isinstance(task, _VideoDone):
                    results: Iterable[_VideoDone] = [task]
                else:
                    fps_out = self.cfg.fps or (info.fps / self.cfg.every if info.fps else 25.0)
                    results = self._one_pass(task, sources[src].annotate_to if adir is not None else None, fps_out)
                yield from self._collect(status, results, bar)
            return
        statuses: dict[int, SourceStatus] = {}
        counts: dict[int, int] = {}

        def all_tasks() -> Iterator[Any]:
            for src in range(i, j):
                status, tasks, _ = self._plan_video(src, sources[src], bar, runner.workers, None)
                statuses[src], counts[src] = status, len(tasks)
                yield from tasks

        results = runner.run(all_tasks(), parallel=True)

        def of_source(first: _VideoDone) -> Iterator[_VideoDone]:
            yield first
            for _ in range(counts[first.src] - 1):
                yield next(results)

        for d in results:
            yield from self._collect(statuses[d.src], of_source(d), bar)

    def _one_pass(self, task: _VideoTask, annotate_to: str | None, fps_out: float) -> Iterator[_VideoDone]:
        """A video analysed in this process, batch by batch (and written annotated to ``annotate_to``)."""
        writer = None
        if annotate_to is not None:
            from ferkit.annotate import VideoAnnotator

            writer = VideoAnnotator(annotate_to, fps_out, self.classes, audio_from=task.path, start=task.start)
        empty = FaceTable.empty(task.path, len(self.classes), self.cfg.landmarks)
        finished = False  # False when the consumer stops midway (an interrupt): the annotated video stays partial
        try:
            for item in _video_batches(self.engine, task, keep_images=writer is not None):
                if isinstance(item, _VideoDone):
                    item.frames = item.frames_with_faces = 0  # counted batch by batch
                    finished = True
                    yield item
                    continue
                table, faces = item
                if writer is not None:
                    writer.write_batch(table, faces)
                yield _VideoDone(task.src, table, len(faces), sum(1 for f in faces if len(f.boxes)), final=False)
            finished = True
        except FerkitError as exc:
            from ferkit.errors import OutputError

            finished = not isinstance(exc, OutputError)  # a failed annotation write stays .partial
            yield _VideoDone(task.src, empty, 0, 0, False, _one_line(exc), None)
        except Exception as exc:  # noqa: BLE001 - keep what was analysed, say why it stopped
            finished = True
            yield _VideoDone(task.src, empty, 0, 0, False, f"analysis failed: {_one_line(exc)}", None)
        finally:
            if writer is not None:
                writer.close(complete=finished)


# ================================================================================================ helpers


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or (hasattr(x, "getbands") and hasattr(x, "mode"))


def _resolve(inputs: Any, recursive: bool) -> list[_Source]:
    """Inputs -> list of sources (arrays, files; folders and list files expanded; problems kept as errors)."""
    from ferkit.io import expand_sources

    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "UO":  # an array of paths, not an image
        inputs = inputs.tolist()
    if _is_array(inputs):
        arr = np.asarray(inputs) if isinstance(inputs, np.ndarray) else inputs
        if isinstance(arr, np.ndarray) and arr.ndim == 4:
            return [_Source(f"<array {i}>", "array", array=a) for i, a in enumerate(arr)]
        return [_Source("<array>", "array", array=arr)]
    if isinstance(inputs, (str, bytes, os.PathLike)) or not hasattr(inputs, "__iter__"):
        items = [inputs]
    else:  # lists, tuples, generators, pandas Series, sets... of paths / arrays
        items = list(inputs)
    out: list[_Source] = []
    for k, item in enumerate(items):
        if _is_array(item):
            out.append(_Source(f"<array {k}>", "array", array=item))
            continue
        if not isinstance(item, (str, os.PathLike)):
            out.append(_Source(repr(item)[:60], "image", error=f"not a path or an image array ({type(item).__name__})"))
            continue
        for src in expand_sources([item], recursive=recursive):
            name = src.name
            if src.error is not None:
                out.append(_Source(name, src.kind or "image", src.path, error=src.describe()))
            else:
                out.append(_Source(name, src.kind or "image", src.path))
    return out


def _progress(enabled: bool, sources: list[_Source]) -> Any:
    if not enabled or not sys.stderr.isatty():
        return None
    if len(sources) == 1 and sources[0].kind != "video":
        return None
    from tqdm import tqdm

    unit = "frame" if any(s.kind == "video" for s in sources) else "file"
    return tqdm(total=len(sources), unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False,
                mininterval=0.25)


def _tick(bar: Any, n: int) -> None:
    if bar is not None and n:
        bar.update(n)


@contextlib.contextmanager
def _cv2_threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    old = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(old)


_DEFAULT: dict[tuple, Analyzer] = {}


def analyze(inputs: ImageInput | Sequence[ImageInput], *, progress: bool = False,
            annotate: str | os.PathLike[str] | None = None, **options: Any) -> AnalysisResults:
    """Analyse photos / videos / folders / arrays in one call: ``ferkit.analyze("talk.mp4", every=2)``.

    ``options`` are those of :class:`Analyzer`. The analyzer for a given set of options is kept for the next
    call (models loaded once per process); use :class:`Analyzer` directly to control its lifetime.
    """
    key = tuple(sorted((k, repr(v)) for k, v in options.items()))
    az = _DEFAULT.get(key)
    if az is None:
        if len(_DEFAULT) >= 4:
            _DEFAULT.pop(next(iter(_DEFAULT))).close()
        az = _DEFAULT[key] = Analyzer(**options)
    return az.analyze(inputs, progress=progress, annotate=annotate)
