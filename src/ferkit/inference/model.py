"""Expression classifiers on onnxruntime: a shipped model = ``<name>.onnx`` + ``<name>.json`` (its card).

The ONNX input is ``(N, C, S, S)`` float32 pixels / 255 (C = 1 grey or 3 BGR, S from the card); the output
is logits (or log-probabilities for ensembles). Probabilities are ``softmax(output / temperature)``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, ModelError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def _session(path: Path, threads: int = 1) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"cannot load ONNX model {path}: {e}") from None


def resolve_model(name_or_path: str | Path) -> tuple[Path, Path]:
    """``default`` / ``fer2013`` (shipped) or a path to ``X.onnx`` / ``X.json`` -> (onnx, card)."""
    p = Path(name_or_path)
    if p.suffix in (".onnx", ".json") and p.exists():
        return p.with_suffix(".onnx"), p.with_suffix(".json")
    cand = WEIGHTS_DIR / f"{name_or_path}.onnx"
    if cand.exists():
        return cand, cand.with_suffix(".json")
    if p.suffix in (".onnx", ".json"):
        raise ModelError(f"model file not found: {p}")
    if (p / "config.json").is_file():
        raise ModelError(f"{p} is a training run, not an exported model: export it first "
                         f"(ferkit export {p} --name NAME --out-dir DIR), then use DIR/NAME.onnx")
    shipped = sorted(f.stem for f in WEIGHTS_DIR.glob("*.onnx"))
    raise ModelError(
        f"unknown model {str(name_or_path)!r}: shipped models are {shipped}, or give a path to a .onnx file"
    )


def load_card(name_or_path: str | Path) -> tuple[Path, dict[str, Any]]:
    """(ONNX path, model card) of a shipped model or an exported ``X.onnx``; the card must name classes and input."""
    onnx_path, card_path = resolve_model(name_or_path)
    if not card_path.exists():
        raise ModelError(f"{onnx_path} has no model card {card_path.name} beside it")
    try:
        card = json.loads(card_path.read_text())
    except json.JSONDecodeError as e:
        raise ModelError(f"model card {card_path} is not valid JSON: {e}") from None
    except OSError as e:
        raise ModelError(f"model card {card_path} cannot be read: {e.strerror or e}") from None
    for key in ("classes", "input"):
        if key not in card:
            raise ModelError(f"model card {card_path} has no {key!r}")
    return onnx_path, card


def list_shipped() -> list[dict[str, Any]]:
    """Cards of the models shipped in ``ferkit/weights``."""
    out = []
    for f in sorted(WEIGHTS_DIR.glob("*.json")):
        if f.with_suffix(".onnx").exists():
            out.append(json.loads(f.read_text()))
    return out


def _face_pixels(a: np.ndarray) -> np.ndarray:
    """uint8 pixels of face arrays by the image reader's rule (floats in [0, 1] scaled), stricter where a face
    could be misread: no bool masks, integers only in 0..255."""
    from ..io.images import _to_uint8

    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise InputError(f"faces must be uint8 (0..255) or float (0..1) pixels, got {a.dtype}")
    if np.issubdtype(a.dtype, np.integer) and a.size and (int(a.min()) < 0 or int(a.max()) > 255):
        raise InputError(f"integer face values must lie in 0..255, found {int(a.min())}..{int(a.max())}: pass uint8")
    return _to_uint8(a) if a.size else a.astype(np.uint8)


def _refuse_path(x: object) -> None:
    if isinstance(x, (str, bytes, Path)):
        raise InputError(f"faces must be image arrays, got the path {x!r}: load it first (ferkit.io.load_image), "
                         "or analyse the file with ferkit.analyze")


@dataclass
class ExpressionModel:
    """A loaded classifier. ``predict`` takes face crops and returns calibrated probabilities."""

    onnx_path: Path
    card: dict[str, Any]
    session: Any

    @classmethod
    def load(cls, name_or_path: str | Path = "default", threads: int = 1) -> ExpressionModel:
        onnx_path, card = load_card(name_or_path)
        return cls(onnx_path, card, _session(onnx_path, threads))

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.card["classes"])

    @property
    def input_size(self) -> int:
        return int(self.card["input"]["size"])

    @property
    def channels(self) -> int:
        return int(self.card["input"].get("channels", 1))

    @property
    def temperature(self) -> float:
        return float(self.card.get("temperature", 1.0))

    def prepare(self, faces: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """Faces -> model input ``(n, c, s, s)``. Faces: a batch ``(n, h, w)`` grey or ``(n, h, w, 3)`` BGR, one
        face ``(h, w)`` / ``(h, w, 3)``, or a list of faces; any size; uint8 (0..255) or float in [0, 1], as
        :class:`~ferkit.Analyzer` takes images. Raises :class:`~ferkit.errors.InputError` for anything else."""
        s, c = self.input_size, self.channels
        _refuse_path(faces)
        if isinstance(faces, np.ndarray):
            if faces.ndim == 2 or (faces.ndim == 3 and faces.shape[2] in (1, 3, 4) and faces.shape[1] > 4):
                faces = faces[None]  # one face
            if faces.ndim == 4 and faces.shape[3] == 1:
                faces = faces[..., 0]
            if faces.ndim not in (3, 4) or (faces.ndim == 4 and faces.shape[3] not in (3, 4)):
                raise InputError(f"faces must be (n, h, w) grey or (n, h, w, 3) BGR arrays (or one face), got shape "
                                 f"{faces.shape}" + (": channels first? use x.transpose(0, 2, 3, 1)"
                                                     if faces.ndim == 4 and faces.shape[1] in (1, 3) else ""))
            faces = _face_pixels(faces)
            if faces.ndim == 4 and faces.shape[3] == 4:
                faces = faces[..., :3]  # BGRA: the alpha channel is not part of the face
        if isinstance(faces, np.ndarray) and faces.shape[1:3] == (s, s):
            arr = faces
            if arr.ndim == 4 and c == 1:
                arr = np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_BGR2GRAY) for f in arr])
            elif arr.ndim == 3 and c == 3:
                arr = np.repeat(arr[..., None], 3, axis=3)  # grey faces for a colour model
        else:
            out = []
            for f in faces:
                _refuse_path(f)
                f = np.asarray(f)
                if f.ndim == 3 and f.shape[2] == 1:
                    f = f[..., 0]
                if f.ndim not in (2, 3) or (f.ndim == 3 and f.shape[2] not in (3, 4)):
                    raise InputError(f"each face must be (h, w) grey or (h, w, 3) BGR, got shape {f.shape}")
                f = _face_pixels(f)
                if f.ndim == 3:
                    f = np.ascontiguousarray(f[..., :3])
                if f.ndim == 3 and c == 1:
                    f = cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)
                elif f.ndim == 2 and c == 3:
                    f = cv2.cvtColor(f, cv2.COLOR_GRAY2BGR)
                if f.shape[:2] != (s, s):
                    f = cv2.resize(f, (s, s), interpolation=cv2.INTER_AREA)
                out.append(f)
            arr = np.stack(out) if out else np.zeros((0, s, s) if c == 1 else (0, s, s, 3), np.uint8)
        x = arr.astype(np.float32) * (1.0 / 255.0)
        return x[:, None] if x.ndim == 3 else np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    @functools.cached_property
    def wants_boxes(self) -> bool:
        """True for models with per-image region crops (a second ONNX input ``boxes``, placed by the mesh)."""
        return "regions" in self.card and len(self.session.get_inputs()) > 1

    @property
    def region_names(self) -> list[str]:
        return list(self.card.get("regions", {}).get("names", []))

    def region_boxes(self, x: np.ndarray) -> np.ndarray:
        """Mesh-placed region boxes ``(n, R, 4)`` for a prepared batch ``(n, c, s, s)`` (the face mesh runs on
        the crops; faces it does not find keep the template boxes)."""
        from ..face.regions import mesh_region_boxes

        grey = x[:, 0] if x.shape[1] == 1 else (0.114 * x[:, 0] + 0.587 * x[:, 1] + 0.299 * x[:, 2])
        return mesh_region_boxes(np.clip(grey * 255 + 0.5, 0, 255).astype(np.uint8), self.region_names,
                                 cache=False)

    def logits(self, x: np.ndarray, flip: bool = False, boxes: np.ndarray | None = None) -> np.ndarray:
        """Raw model output for a prepared batch (optionally averaged with the mirrored faces). Models that
        take region ``boxes`` get them from the face mesh on the crops unless given."""
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        name = self.session.get_inputs()[0].name
        feeds = {name: x}
        if self.wants_boxes:
            feeds["boxes"] = np.ascontiguousarray(self.region_boxes(x) if boxes is None else boxes, np.float32)
        z = self.session.run(None, feeds)[0]
        if flip:
            feeds[name] = np.ascontiguousarray(x[..., ::-1])
            if self.wants_boxes:
                fb = feeds["boxes"].copy()
                fb[..., 0] = 1 - fb[..., 0]
                feeds["boxes"] = fb
            z = (z + self.session.run(None, feeds)[0]) / 2
        return z

    def predict(self, faces: np.ndarray | list[np.ndarray], flip: bool = False,
                boxes: np.ndarray | None = None) -> np.ndarray:
        """Calibrated class probabilities ``(n, n_classes)`` float32 (``boxes``: per-face region boxes for
        models that take them; default: placed by the face mesh)."""
        z = self.logits(self.prepare(faces), flip=flip, boxes=boxes).astype(np.float64) / self.temperature
        z -= z.max(1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(1, keepdims=True)).astype(np.float32)
