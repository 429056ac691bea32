"""Checking clip verdicts against gold labels (``ferkit evaluate-videos``).

Gold file: CSV with columns ``video,label``; labels are classes (7 or 8: ``angry ... contempt``, common
synonyms such as ``happiness`` accepted) or sentiments (``negative / neutral / positive``). Videos are matched
to the analysed sources by path, then file name, then file stem. Videos without a face are reported with the
prediction ``no_face`` (and count as wrong), never dropped.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import InputError
from ferkit.labels import EMOTIONS, SENTIMENTS

__all__ = ["evaluate_verdicts", "markdown_report", "read_gold"]

NO_FACE = "no_face"
SYNONYMS = {
    "anger": "angry", "angry": "angry", "disgusted": "disgust", "disgust": "disgust", "fearful": "fear",
    "fear": "fear", "afraid": "fear", "scared": "fear", "happiness": "happy", "happy": "happy", "joy": "happy",
    "sadness": "sad", "sad": "sad", "surprised": "surprise", "surprise": "surprise", "neutral": "neutral",
    "calm": "neutral", "contempt": "contempt", "contemptuous": "contempt",
    "negative": "negative", "positive": "positive",
}


def read_gold(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(video, label)`` pairs of a gold CSV (labels normalised); raises :class:`InputError` listing every
    unknown label."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such gold-label file")
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = [c.strip().lower() for c in (reader.fieldnames or [])]
        if "video" not in cols or "label" not in cols:
            raise InputError(f"{p}: expected a CSV with columns video,label; found {', '.join(cols) or 'nothing'}")
        rows = [{k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in reader]
    pairs: list[tuple[str, str]] = []
    bad: list[str] = []
    for i, r in enumerate(rows, start=2):
        lab = SYNONYMS.get(r["label"].lower())
        if lab is None:
            bad.append(f"line {i}: {r['label']!r} ({r['video']})")
        else:
            pairs.append((r["video"], lab))
    if bad:
        raise InputError(f"{p}: unknown labels (use {', '.join(EMOTIONS)} or {', '.join(SENTIMENTS)}): "
                         + "; ".join(bad[:20]) + (f"; ... {len(bad) - 20} more" if len(bad) > 20 else ""))
    if not pairs:
        raise InputError(f"{p}: no labelled videos")
    times = Counter(v for v, _ in pairs)
    dups = sorted(v for v, n in times.items() if n > 1)
    if dups:
        raise InputError(f"{p}: videos listed more than once: {', '.join(dups[:20])}"
                         + (f" ... {len(dups) - 20} more" if len(dups) > 20 else ""))
    kinds = {lab in SENTIMENTS and lab != "neutral" for _, lab in pairs}
    if True in kinds and any(lab in EMOTIONS and lab != "neutral" for _, lab in pairs):
        raise InputError(f"{p}: mixes emotion and sentiment labels; use one kind per file")
    return pairs


def _match(video: str, sources: list[str]) -> str | None:
    """The source ``video`` names (by path, then file name, then stem); raises :class:`InputError` when the
    first key that matches at all matches several sources."""
    for key in (lambda s: os.path.normpath(s), lambda s: os.path.basename(s), lambda s: Path(s).stem):
        want = key(video)
        hits = [s for s in sources if key(s) == want]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise InputError(f"gold video {video!r} matches {len(hits)} analysed videos ({', '.join(hits[:5])}): "
                             "give its path as analysed")
    return None


def evaluate_verdicts(summary: Any, gold: list[tuple[str, str]], counts: Any = None,
                      missing_as_no_face: bool = False, gold_name: str = "gold labels") -> dict[str, Any]:
    """Accuracy, confusion matrix and per-video table of clip verdicts against gold labels.

    ``summary``: a per-video summary ``DataFrame`` (``source``, ``status``, ``verdict``, ``sentiment``,
    ``share_<class>``, ``rows``). ``counts``: optional ``{source: {class: frames}}``. Gold videos that match no
    source raise :class:`InputError` listing them (unless ``missing_as_no_face``).
    """
    sources = [str(s) for s in summary["source"].tolist()]
    by_src = {str(r["source"]): r for r in summary.to_dict("records")}
    sentiment = all(lab in SENTIMENTS for _, lab in gold) and any(lab != "neutral" for _, lab in gold)
    matched: list[tuple[str, str | None, str]] = []
    unknown: list[str] = []
    for video, lab in gold:
        src = _match(video, sources)
        if src is None and not missing_as_no_face:
            unknown.append(video)
        matched.append((video, src, lab))
    if unknown:
        raise InputError(f"{gold_name}: {len(unknown)} video{'s' if len(unknown) != 1 else ''} not in the "
                         f"predictions: {', '.join(unknown[:20])}{' ...' if len(unknown) > 20 else ''} "
                         f"(a rows file has no line for videos without faces: use the --summary file)")
    classes = list(SENTIMENTS) if sentiment else [c for c in EMOTIONS if any(
        f"share_{c}" == k for k in summary.columns)] or list(EMOTIONS)
    emo_classes = [c for c in EMOTIONS if f"share_{c}" in summary.columns]
    missing = sorted({lab for _, lab in gold} - set(classes))
    if missing:
        raise InputError(f"{gold_name}: gold labels {', '.join(missing)} are not among the predicted classes "
                         f"({', '.join(classes)}): the model cannot output them")
    table: list[dict[str, Any]] = []
    for video, src, lab in matched:
        r = by_src.get(src) if src is not None else None
        n = int(r["rows"]) if r is not None and r.get("rows") == r.get("rows") else 0
        status = str(r["status"]) if r is not None else NO_FACE  # (a failed video keeps its status)
        pred = (r.get("sentiment") if sentiment else r.get("verdict")) if r is not None and n > 0 else None
        pred = str(pred) if isinstance(pred, str) and pred else NO_FACE
        row: dict[str, Any] = {"video": video, "source": src or "", "status": status,
                               "predicted": pred, "gold": lab, "correct": pred == lab, "frames": n}
        if counts is not None and src in counts:
            for c in emo_classes:
                row[c] = int(counts[src].get(c, 0))
        else:
            for c in emo_classes:
                share = r.get(f"share_{c}") if r is not None else None
                row[c] = int(round(share * n)) if n and share is not None and share == share else 0
        table.append(row)
    pred_labels = [*classes, NO_FACE]
    cm = np.zeros((len(classes), len(pred_labels)), np.int64)
    for row in table:
        if row["gold"] in classes:
            cm[classes.index(row["gold"]), pred_labels.index(row["predicted"])
               if row["predicted"] in pred_labels else -1] += 1
    n_all = len(table)
    with_face = [r for r in table if r["predicted"] != NO_FACE]
    no_result = [r for r in table if r["predicted"] == NO_FACE]
    failed = sum(r["status"] not in (NO_FACE, "ok", "low_quality") for r in no_result)
    per_class = {c: (float(cm[i, i] / cm[i].sum()) if cm[i].sum() else None) for i, c in enumerate(classes)}
    recalls = [v for v in per_class.values() if v is not None]
    return {
        "task": "sentiment" if sentiment else "emotion",
        "videos": n_all, "videos_with_face": len(with_face), "no_face": len(no_result) - failed,
        "failed": failed,
        "accuracy": float(np.mean([r["correct"] for r in table])) if n_all else None,
        "accuracy_with_face": float(np.mean([r["correct"] for r in with_face])) if with_face else None,
        "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
        "recall": per_class,
        "labels": classes, "predicted_labels": pred_labels, "confusion": cm.tolist(),
        "per_video": table,
    }


def markdown_report(rep: dict[str, Any]) -> str:
    """Readable Markdown: accuracy line, confusion matrix, per-video table."""
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f} %"

    failed = f", {rep['failed']} failed" if rep.get("failed") else ""
    lines = [f"{rep['task']} verdicts on {rep['videos']} videos ({rep['no_face']} without a face{failed}): "
             f"accuracy {pct(rep['accuracy'])}, on videos with a face {pct(rep['accuracy_with_face'])}, "
             f"balanced {pct(rep['balanced_accuracy'])}", "", "confusion (rows: gold, columns: predicted)", ""]
    pl = rep["predicted_labels"]
    lines.append("| gold \\ predicted | " + " | ".join(pl) + " |")
    lines.append("|---" * (len(pl) + 1) + "|")
    for lab, row in zip(rep["labels"], rep["confusion"]):
        lines.append(f"| {lab} | " + " | ".join(str(v) for v in row) + " |")
    lines += ["", "per video", ""]
    if rep["per_video"]:
        cols = [c for c in rep["per_video"][0] if c not in ("source",)]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|---" * len(cols) + "|")
        for r in rep["per_video"]:
            lines.append("| " + " | ".join(("yes" if r[c] else "no") if c == "correct" else str(r[c])
                                           for c in cols) + " |")
    return "\n".join(lines)
