"""Evaluate an ONNX expression model on a dataset split: metrics, markdown table, confusion-matrix PNG."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DatasetError
from .metrics import classification_report, fit_temperature, softmax

if TYPE_CHECKING:
    from ..training.data import FaceSet


def _aligned_classes(model_classes: tuple[str, ...], data_classes: tuple[str, ...]) -> list[int]:
    missing = [c for c in data_classes if c not in model_classes]
    if missing:
        raise DatasetError(f"the model has no class {missing}; its classes are {list(model_classes)}")
    return [model_classes.index(c) for c in data_classes]


def predict_logits_onnx(model: Any, images: np.ndarray, batch: int = 256, flip: bool = False) -> np.ndarray:
    """Model outputs (before temperature) for uint8 faces."""
    out = [model.logits(model.prepare(images[i:i + batch]), flip=flip) for i in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.zeros((0, len(model.classes)), np.float32)


def evaluate_model(model: Any, data: str = "ferplus", split: str = "test", data_dir: str | None = None,
                   flip: bool = False, temperature: float | None = None,
                   dataset: FaceSet | None = None, all_classes: bool = False) -> dict[str, Any]:
    """Metrics of ``model`` (an :class:`~ferkit.inference.ExpressionModel`, or a shipped name / ``.onnx`` path)
    on one split.

    ``dataset``: that split already loaded (``data``/``split`` then only label the report). When the dataset
    has fewer classes than the model (FER2013's 7 vs an 8-class model), the model's probabilities are
    restricted to the dataset's classes and renormalised, unless ``all_classes``: then the model predicts over all
    its classes, as in use (a face it calls contempt is wrong even if the data has no contempt), and the per-class
    figures list every model class (``n`` 0 for those the data lacks).
    """
    from ..training.data import load_dataset

    if isinstance(model, (str, Path)):
        from ..inference import ExpressionModel

        model = ExpressionModel.load(model)
    ds = dataset if dataset is not None else load_dataset(data, split, data_dir=data_dir)
    z = predict_logits_onnx(model, ds.images, flip=flip)
    t = model.temperature if temperature is None else temperature
    return score_logits(z, ds, tuple(model.classes), t, data=data, split=split, flip=flip, all_classes=all_classes)


def score_logits(z: np.ndarray, ds: FaceSet, model_classes: tuple[str, ...], temperature: float, *,
                 data: str, split: str, flip: bool = False, all_classes: bool = False) -> dict[str, Any]:
    """The report of :func:`evaluate_model` from outputs ``z`` already computed on ``ds`` (one pass, many reports)."""
    cols = _aligned_classes(model_classes, ds.classes)
    probs = softmax(z, temperature)
    if all_classes:  # labels as model class indices; the model's own probabilities, nothing left out
        rep = classification_report(np.where(ds.labels >= 0, np.asarray(cols)[np.maximum(ds.labels, 0)], -1), probs,
                                    model_classes)
    else:
        probs = probs[:, cols]
        rep = classification_report(ds.labels, probs / probs.sum(1, keepdims=True), ds.classes)
    rep.update({"data": data, "split": split, "source": ds.source, "excluded_on_load": ds.excluded,
                "flip_tta": flip, "temperature": temperature})
    rep["all_rows"] = ds.all_rows  # True: a list without splits, the split asked for does not apply
    unused = [c for c in model_classes if c not in ds.classes]
    if all_classes:
        rep["all_classes"] = True
    elif unused:  # say so: these figures are not those of the model's own task
        rep["model_classes_left_out"] = unused
    return rep


def fit_model_temperature(model: Any, data: str = "ferplus", data_dir: str | None = None) -> float:
    """Temperature minimising the validation NLL of ``model``'s raw outputs."""
    from ..training.data import load_dataset

    ds = load_dataset(data, "val", data_dir=data_dir)
    return fit_logits_temperature(predict_logits_onnx(model, ds.images), ds, tuple(model.classes))


def fit_logits_temperature(z: np.ndarray, ds: FaceSet, model_classes: tuple[str, ...]) -> float:
    """Temperature minimising the NLL of outputs ``z`` on ``ds`` (restricted to the dataset's classes)."""
    return fit_temperature(z[:, _aligned_classes(model_classes, ds.classes)], ds.labels)


def _load_exclusions(rep: dict[str, Any]) -> str:
    """``; dropped on load: ambiguous label 4`` (rows the loader left out before scoring), or ``""``."""
    dropped = {k: v for k, v in (rep.get("excluded_on_load") or {}).items()
               if v and not k.startswith("not scored")}  # (those rows are loaded, then excluded from scoring)
    return "; dropped on load: " + ", ".join(f"{k} {v}" for k, v in dropped.items()) if dropped else ""


def _split_label(rep: dict[str, Any]) -> str:
    """The split, or ``(all rows)`` for a list without splits (a path CSV without a split column)."""
    return "(all rows)" if rep.get("all_rows") else str(rep.get("split", ""))


def markdown_table(rep: dict[str, Any]) -> str:
    """The seeds' table: per-class top-1 / top-2 with mean and variance across classes."""
    lines = [
        f"**{rep.get('data', '')} {_split_label(rep)}**: accuracy {rep['accuracy']:.4f}, "
        f"macro-F1 {rep['macro_f1']:.4f}, ECE {rep['ece']:.4f}, n = {rep['n']} "
        f"(excluded {rep['n_excluded']}{_load_exclusions(rep)})"
        + (f"; the model's {', '.join(rep['model_classes_left_out'])} probabilities left out and the rest "
           "renormalised (the data has no such class)" if rep.get("model_classes_left_out") else "")
        + (f"; scored over all {len(rep['per_class'])} model classes" if rep.get("all_classes") else ""),
        "",
        "| class | n | top-1 | top-2 | F1 |",
        "|---|---|---|---|---|",
    ]
    for c, v in rep["per_class"].items():
        if v["n"]:
            lines.append(f"| {c} | {v['n']} | {v['top1']:.4f} | {v['top2']:.4f} | {v['f1']:.4f} |")
    lines.append(f"| mean over classes | | {rep['mean_class_top1']:.4f} | {rep['mean_class_top2']:.4f} | "
                 f"{rep['macro_f1']:.4f} |")
    lines.append(f"| variance over classes | | {rep['var_class_top1']:.4f} | {rep['var_class_top2']:.4f} | |")
    return "\n".join(lines)


def plot_confusion(rep: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(rep["confusion"], dtype=float)
    classes = rep["classes"]
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if cm[i, j]:
                ax.text(j, i, f"{norm[i, j]:.2f}\n{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"{rep.get('data', '')} {rep.get('split', '')}: accuracy {rep['accuracy']:.3f}")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
