"""Datasets: FER2013/FER+ ``.npz`` files, the Kaggle ``fer2013.csv``, ``split/<class>/*.jpg`` folders
and ``path,label`` CSV files. Everything loads into one in-memory :class:`FaceSet`.

Targets are always a vote/probability matrix ``(n, n_classes)``: FER+ rows hold the crowd votes,
single-label rows are one-hot. Label schemes (``schemes.py``) turn them into losses.
"""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..labels import FER2013_CLASSES, FERPLUS_CLASSES, votes_to_classes
from .options import LABEL_SETS

NPZ_FILES = {
    "train": "fer2013_train.npz",
    "val": "fer2013_val_public.npz",
    "test": "fer2013_test_private.npz",
}
SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "public": "val", "publictest": "val",
    "test": "test", "private": "test", "privatetest": "test",
}
KAGGLE_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}

NPZ_LAYOUT = (
    "a folder holding fer2013_train.npz, fer2013_val_public.npz and fer2013_test_private.npz "
    "(arrays: images N x 48 x 48 uint8, label N int8, ferplus_votes N x 10)"
)


#: ``FaceSet.excluded`` key of the faces loaded but left out of scoring (FER+ plurality unknown, not a face, tied).
NOT_SCORED = "not scored (unknown/not-a-face/tied plurality)"


@dataclass
class FaceSet:
    """Faces and their targets, all in memory.

    Attributes:
        images: ``(n, h, w)`` grey or ``(n, h, w, 3)`` BGR uint8.
        targets: ``(n, n_classes)`` float32 votes or one-hot rows.
        classes: class names in target column order.
        labels: ``(n,)`` int64 evaluation label per image (plurality / given label; -1 = excluded from scoring).
        source: where the data came from.
        excluded: images dropped while loading, by reason.
        all_rows: the data has no splits (a path CSV without a split column): it is one list, whatever split
            was asked for.
    """

    images: np.ndarray
    targets: np.ndarray
    classes: tuple[str, ...]
    labels: np.ndarray
    source: str = ""
    excluded: dict[str, int] = field(default_factory=dict)
    all_rows: bool = False

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx: np.ndarray) -> FaceSet:
        """The faces ``idx`` (a slice of a split reports only its own rows: the images dropped while loading the
        file are not part of it, and its unscored faces are counted afresh)."""
        labels = self.labels[idx]
        excluded = {NOT_SCORED: int((labels < 0).sum())} if NOT_SCORED in self.excluded else {}
        return FaceSet(self.images[idx], self.targets[idx], self.classes, labels, self.source, excluded,
                       self.all_rows)

    def __repr__(self) -> str:
        return f"<FaceSet {self.summary()}>"

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels[self.labels >= 0], minlength=len(self.classes))

    def summary(self) -> str:
        counts = ", ".join(f"{c} {n}" for c, n in zip(self.classes, self.class_counts()))
        ex = "; excluded: " + ", ".join(f"{k} {v}" for k, v in self.excluded.items()) if self.excluded else ""
        return f"{len(self)} images from {self.source} ({counts}){ex}"


def _split_name(split: str) -> str:
    key = split.lower().replace("_", "").replace("-", "")
    if key not in SPLIT_ALIASES:
        raise DatasetError(f"unknown split {split!r}; use train, val or test")
    return SPLIT_ALIASES[key]


def default_data_dir() -> Path:
    """``$FERKIT_DATA`` or the ``shared/data/fer2013`` folder beside the checkout / working directory."""
    env = os.environ.get("FERKIT_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for base in [Path.cwd(), *here.parents]:
        cand = base.parent / "shared" / "data" / "fer2013"
        if cand.is_dir():
            return cand
        cand = base / "shared" / "data" / "fer2013"
        if cand.is_dir():
            return cand
    return Path("shared/data/fer2013")


def load_npz(split: str, labels: str = "ferplus", data_dir: str | Path | None = None,
             votes_key: str = "ferplus_votes") -> FaceSet:
    """Load one FER2013 split from the ``.npz`` files.

    Args:
        split: ``train``, ``val`` (PublicTest) or ``test`` (PrivateTest).
        labels: ``ferplus`` (8 classes, crowd votes) or ``fer2013`` (7 original classes).
        data_dir: folder of the ``.npz`` files (default: :func:`default_data_dir`).
        votes_key: ``ferplus_votes`` (Microsoft's label.csv) or ``ferplus_votes_fer2013new``.

    FER+: rows without votes or whose 8 emotion columns are all zero are dropped; the evaluation label
    is the plurality over all 10 columns when that is one emotion, else -1 (unknown / not-a-face / tie),
    counted in ``excluded``. FER2013: rows labelled -1 (ambiguous duplicates) are dropped.
    """
    split = _split_name(split)
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    path = folder / NPZ_FILES[split]
    if not path.is_file():
        raise DatasetError(f"{path} not found; expected {NPZ_LAYOUT}")
    try:
        z = np.load(path)
        images = z["images"]
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same message
        raise DatasetError(f"{path} is not a readable FER2013 .npz ({e}); expected {NPZ_LAYOUT}") from None
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(f"{path}: 'images' has shape {images.shape} {images.dtype}; expected {NPZ_LAYOUT}")
    if labels == "fer2013":
        lab = z["label"].astype(np.int64)
        keep = lab >= 0
        targets = np.eye(7, dtype=np.float32)[lab[keep]]
        return FaceSet(images[keep], targets, FER2013_CLASSES, lab[keep], f"{path.name} (FER2013 labels)",
                       {"ambiguous label": int((~keep).sum())})
    if labels != "ferplus":
        raise DatasetError(f"unknown label set {labels!r}; use 'ferplus' or 'fer2013'")
    if votes_key not in z:
        raise DatasetError(f"{path} has no {votes_key!r} array; expected {NPZ_LAYOUT}")
    raw = z[votes_key].astype(np.int64)
    has_votes = raw[:, 0] >= 0
    votes8 = votes_to_classes(np.clip(raw, 0, None)).astype(np.float32)
    emo_sum = votes8.sum(1)
    keep = has_votes & (emo_sum > 0)
    # Evaluation label: the single most-voted of the 10 columns, if it is an emotion.
    top = raw.max(1, keepdims=True)
    n_top = (raw == top).sum(1)
    top_col = raw.argmax(1)
    order = votes_to_classes(np.arange(10)[None, :])[0]  # vote column of each class
    col_to_class = {int(c): i for i, c in enumerate(order)}
    lab = np.array([col_to_class.get(int(c), -1) for c in top_col], dtype=np.int64)
    lab[(n_top > 1) | ~has_votes] = -1
    excluded = {"no FER+ votes": int((~has_votes).sum()), "no emotion votes": int((has_votes & (emo_sum == 0)).sum())}
    fs = FaceSet(images[keep], votes8[keep], FERPLUS_CLASSES, lab[keep], f"{path.name} (FER+ votes)", excluded)
    fs.excluded[NOT_SCORED] = int((fs.labels < 0).sum())
    return fs


def load_kaggle_csv(path: str | Path, split: str = "train") -> FaceSet:
    """Load the original Kaggle ``fer2013.csv`` (columns ``emotion,pixels,Usage``)."""
    path = Path(path)
    layout = "a CSV with header emotion,pixels,Usage and 48*48 space-separated pixels per row"
    if not path.is_file():
        raise DatasetError(f"{path} not found; expected {layout}")
    usage = KAGGLE_USAGE[_split_name(split)]
    images, labs = [], []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"emotion", "pixels", "Usage"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: header is {reader.fieldnames}; expected {layout}")
        for i, row in enumerate(reader, start=2):
            if row["Usage"] != usage:
                continue
            try:
                px = np.array((row["pixels"] or "").split(), dtype=np.float32)
                lab = int(row["emotion"])
            except (TypeError, ValueError):
                raise DatasetError(f"{path}:{i}: emotion {row['emotion']!r} or pixels are not numbers; "
                                   f"expected {layout}") from None
            if px.size != 48 * 48:
                raise DatasetError(f"{path}:{i}: {px.size} pixels; expected {layout}")
            images.append(px.reshape(48, 48).clip(0, 255).astype(np.uint8))
            labs.append(lab)
    if not images:
        raise DatasetError(f"{path}: no rows with Usage={usage}; expected {layout}")
    lab = np.array(labs, dtype=np.int64)
    if lab.min() < 0 or lab.max() > 6:
        raise DatasetError(f"{path}: emotion codes must be 0..6")
    return FaceSet(np.stack(images), np.eye(7, dtype=np.float32)[lab], FER2013_CLASSES, lab, f"{path.name} ({usage})")


def _read_grey(path: Path, size: int) -> np.ndarray | None:
    import cv2

    try:  # read through Python (no OpenCV warning line for a missing file; any file name works)
        buf = np.fromfile(path, np.uint8)
    except OSError:
        return None
    img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if buf.size else None
    if img is None or img.size == 0:
        return None
    if img.shape != (size, size):
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return img


def _from_paths(paths: list[Path], labels: list[str], classes: tuple[str, ...] | None, size: int,
                source: str) -> FaceSet:
    if classes is None:
        known = [c for c in FERPLUS_CLASSES if c in set(labels)]
        classes = tuple(known + sorted(set(labels) - set(known)))
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise DatasetError(f"{source}: labels {unknown} are not among the classes {list(classes)}")
    images, labs, bad = [], [], []
    for p, lab in zip(paths, labels):
        img = _read_grey(p, size)
        if img is None:
            bad.append(str(p))
            continue
        images.append(img)
        labs.append(classes.index(lab))
    if not images:
        raise DatasetError(f"{source}: none of the {len(paths)} images could be read")
    lab_arr = np.array(labs, dtype=np.int64)
    fs = FaceSet(np.stack(images), np.eye(len(classes), dtype=np.float32)[lab_arr], tuple(classes), lab_arr, source)
    if bad:
        fs.excluded["unreadable images"] = len(bad)
        shown = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
        print(f"ferkit: skipped {len(bad)} unreadable image(s) in {source}: {shown}", file=sys.stderr)
    return fs


def _class_name(folder: str) -> str:
    """Class of a folder name: FER names (``happy``) or FER+ column names (``happiness``)."""
    name = folder.lower()
    return {"happiness": "happy", "sadness": "sad", "anger": "angry"}.get(name, name)


def load_image_folder(root: str | Path, split: str = "train", classes: tuple[str, ...] | None = None,
                      size: int = 48) -> FaceSet:
    """Load ``root/<split>/<class>/*.jpg`` (AffectNet / RAF-DB style) as grey ``size`` x ``size`` faces.

    Class folder names may be FER names (``happy``) or FER+ column names (``happiness``).
    Unreadable images are skipped, counted in ``excluded`` and reported.
    """
    root = Path(root)
    layout = "root/<split>/<class>/*.jpg, e.g. data/train/happy/0001.jpg"
    split_dir = root / split
    if not split_dir.is_dir():
        cands = [d for d in root.iterdir() if d.is_dir()] if root.is_dir() else []
        if root.is_dir() and split_dir.name not in {d.name for d in cands}:
            alias = {d.name.lower(): d for d in cands}
            for key, name in SPLIT_ALIASES.items():
                if name == _split_name(split) and key in alias:
                    split_dir = alias[key]
                    break
    if not split_dir.is_dir():
        raise DatasetError(f"{root}: no folder for split {split!r}; expected {layout}")
    if classes is None:  # the same class indices in every split, whichever classes a split lacks
        names = {_class_name(c.name) for d in _subdirs(root) for c in _subdirs(d)}
        known = [c for c in FERPLUS_CLASSES if c in names]
        classes = tuple(known + sorted(names - set(known)))
    paths, labels = [], []
    for d in _subdirs(split_dir):
        name = _class_name(d.name)
        for f in sorted(d.rglob("*")):
            if f.suffix.lower() in IMAGE_EXTS:
                paths.append(f)
                labels.append(name)
    if not paths:
        raise DatasetError(f"{split_dir}: no images found; expected {layout}")
    return _warn_untrained_classes(_from_paths(paths, labels, classes, size, str(split_dir)), split)


def _subdirs(folder: Path) -> list[Path]:
    """Sub-folders, sorted, without hidden ones (``.ipynb_checkpoints``, ``.git``): those are not classes."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _warn_untrained_classes(fs: FaceSet, split: str) -> FaceSet:
    """A class of the training split without a single image (it is only in another split) gets a warning."""
    try:
        is_train = _split_name(split) == "train"
    except DatasetError:  # a folder split of another name (holdout, fold1): not a training split
        is_train = False
    if is_train:
        empty = [c for c, n in zip(fs.classes, fs.class_counts()) if n == 0]
        if empty:
            import warnings

            warnings.warn(f"{fs.source}: no training images of class {', '.join(empty)} (found only in other "
                          "splits): a model cannot learn it", stacklevel=3)
    return fs


def load_path_csv(path: str | Path, classes: tuple[str, ...] | None = None, size: int = 48,
                  split: str | None = None) -> FaceSet:
    """Load a CSV with columns ``path,label`` and optionally ``split`` (paths relative to the CSV's folder or
    absolute). With a ``split`` column (train / val / test), only the rows of ``split`` are loaded, with class
    indices shared by all splits; without one, every split is the whole file (an evaluation list)."""
    path = Path(path)
    layout = "a CSV with header path,label[,split] (one image per row; split: train, val or test)"
    if not path.is_file():
        raise DatasetError(f"{path} not found; expected {layout}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"path", "label"} <= set(reader.fieldnames):
                raise DatasetError(f"{path}: header is {reader.fieldnames}; expected {layout}")
            has_split = "split" in reader.fieldnames
            rows = list(reader)
    except UnicodeDecodeError:
        raise DatasetError(f"{path} is not UTF-8 text; expected {layout}") from None
    if not rows:
        raise DatasetError(f"{path}: no rows; expected {layout}")
    for line, r in enumerate(rows, start=2):
        if not (r.get("path") or "").strip() or not (r.get("label") or "").strip():
            raise DatasetError(f"{path}, line {line}: a path and a label are needed; expected {layout}")
    source = str(path)
    if has_split:
        if classes is None:
            names = {r["label"].strip().lower() for r in rows}
            known = [c for c in FERPLUS_CLASSES if c in names]
            classes = tuple(known + sorted(names - set(known)))
        want = _split_name(split or "train")
        try:
            rows = [r for r in rows if _split_name((r["split"] or "").strip()) == want]
        except DatasetError as e:
            raise DatasetError(f"{path}: {e}") from None
        if not rows:
            raise DatasetError(f"{path}: no rows with split {want!r}; expected {layout}")
        source = f"{path} (split {want})"
    else:
        source = f"{path} (all rows: no split column)"
    paths = [(path.parent / r["path"]) if not os.path.isabs(r["path"]) else Path(r["path"]) for r in rows]
    labels = [r["label"].strip().lower() for r in rows]
    fs = _from_paths(paths, labels, classes, size, source)
    fs.all_rows = not has_split
    return _warn_untrained_classes(fs, want) if has_split else fs


def _first_line(path: Path) -> str:
    with open(path, "rb") as f:
        return f.readline().decode("utf-8", "replace")


def normalise_labels(data: str, labels: str | None) -> str | None:
    """The label set a (data, labels) pair means, spelled one way: ``None`` for the named datasets and for
    sources with their own labels, ``ferplus`` / ``fer2013`` for a folder of the ``.npz`` files."""
    return (labels or "ferplus") if data not in LABEL_SETS and _is_npz_folder(Path(data)) else None


def _is_npz_folder(p: Path) -> bool:
    return p.is_dir() and all((p / NPZ_FILES[s]).is_file() for s in NPZ_FILES)


def load_dataset(data: str, split: str, labels: str | None = None, data_dir: str | Path | None = None,
                 classes: tuple[str, ...] | None = None) -> FaceSet:
    """One entry point: ``ferplus`` / ``fer2013`` (the ``.npz`` files), a Kaggle CSV, a path CSV or a folder.

    ``labels`` (``ferplus`` or ``fer2013``) picks the label set of a folder of the FER2013 ``.npz`` files; with
    ``data="ferplus"`` / ``"fer2013"`` it may only repeat that name, and the other sources carry their own labels.
    """
    if labels is not None and labels not in LABEL_SETS:
        raise DatasetError(f"unknown label set {labels!r}; use 'ferplus' or 'fer2013' (or leave it out)")
    if data in LABEL_SETS:
        if labels not in (None, data):
            raise DatasetError(f"data {data!r} with labels {labels!r}: these name different label sets; "
                               f"use data {labels!r}")
        return load_npz(split, data, data_dir)
    p = Path(data)
    if _is_npz_folder(p):
        return load_npz(split, labels or "ferplus", p)
    kaggle = p.suffix.lower() == ".csv" and p.is_file() and "pixels" in _first_line(p)
    if labels is not None and (p.is_dir() or p.is_file()) and not (kaggle and labels == "fer2013"):
        raise DatasetError(f"labels {labels!r} applies to the FER2013 .npz files only; {data} carries its own "
                           "labels (leave labels out)")
    if p.is_dir():
        return load_image_folder(p, split, classes)
    if p.suffix.lower() == ".csv" and p.is_file():
        if kaggle:
            return load_kaggle_csv(p, split)
        return load_path_csv(p, classes, split=split)
    raise DatasetError(
        f"cannot read dataset {data!r}: use 'ferplus', 'fer2013', {NPZ_LAYOUT}, a Kaggle fer2013.csv, "
        "a path,label CSV or an image folder root/<split>/<class>/*.jpg"
    )
