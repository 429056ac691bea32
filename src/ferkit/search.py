"""Searching a batch archive (``ferkit search``), contact sheets of the matching faces, and photo sidecars
(``ferkit tag``).

Reading goes part by part (one input's rows at a time) and keeps only the best ``top`` matches, so memory stays
bounded whatever the archive size.
"""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.batch.archive import Archive, atomic_write_bytes, iter_archive_rows
from ferkit.errors import InputError
from ferkit.labels import EMOTIONS
from ferkit.results import printable, unprintable
from ferkit.video.aggregate import class_columns

__all__ = ["contact_sheet", "search_archive", "write_sidecars"]

SENTIMENTS = ("negative", "neutral", "positive")


def _match_source(sources: Any, pattern: str) -> Any:
    """Boolean mask: glob pattern (``*``, ``?``, ``[..]``) on the full path, else a substring."""
    if any(c in pattern for c in "*?["):
        return sources.map(lambda s: fnmatch.fnmatchcase(s, pattern) or fnmatch.fnmatchcase(Path(s).name, pattern))
    return sources.str.contains(pattern, regex=False)


def search_archive(root: str | os.PathLike[str], *, emotion: str | None = None, sentiment: str | None = None,
                   min_prob: float | None = None, source: str | None = None, faces: int | None = None,
                   min_faces: int | None = None, max_faces: int | None = None, top: int | None = 50) -> Any:
    """Faces of the archive at ``root`` that match every given filter, best first (a ``pandas.DataFrame``).

    ``emotion``: the face's most probable class is this one; ``min_prob``: the probability of ``emotion`` (or of
    the face's top class) is at least this; ``sentiment``: negative / neutral / positive; ``source``: glob
    pattern or substring of the path; ``faces`` / ``min_faces`` / ``max_faces``: number of faces in the frame.
    Adds ``n_faces`` and ``score`` (the probability used for ranking) columns.
    """
    import pandas as pd

    if sentiment is not None and sentiment not in SENTIMENTS:
        raise InputError(f"unknown sentiment {sentiment!r}; use one of {', '.join(SENTIMENTS)}")
    if min_prob is not None and not 0.0 <= min_prob <= 1.0:
        raise InputError(f"--min-prob must be in [0, 1], got {min_prob}")
    if emotion is not None and emotion not in EMOTIONS:
        raise InputError(f"unknown emotion {emotion!r}; use one of {', '.join(EMOTIONS)}")
    best: Any = None
    seen: set[str] = set()  # emotion columns of the parts (an archive may mix 7- and 8-class models)
    for rec, df in iter_archive_rows(root):
        if source is not None and not _match_source(pd.Series([printable(rec.source)]), source).iloc[0]:
            continue
        classes = class_columns(df)  # per part: the probability columns, not sharpness or other extras
        seen.update(classes)
        if emotion is not None and emotion not in classes:
            continue  # analysed by a model without that class
        df = df.drop(columns=["landmarks"], errors="ignore")
        df["n_faces"] = df.groupby("frame")["face_id"].transform("size").astype(np.int32)
        m = np.ones(len(df), bool)
        if emotion is not None:
            m &= (df["emotion"] == emotion).to_numpy()
            score = df[emotion].to_numpy()
        else:
            score = df[classes].to_numpy().max(1)
        if sentiment is not None:
            m &= (df["sentiment"] == sentiment).to_numpy()
        if min_prob is not None:
            m &= score >= min_prob
        n = df["n_faces"].to_numpy()
        if faces is not None:
            m &= n == faces
        if min_faces is not None:
            m &= n >= min_faces
        if max_faces is not None:
            m &= n <= max_faces
        if not m.any():
            continue
        hit = df[m].assign(score=score[m].astype(np.float32))
        best = hit if best is None else pd.concat([best, hit], ignore_index=True)
        if top is not None and len(best) > 4 * top:
            best = _rank(best).head(top)
    if emotion is not None and seen and emotion not in seen:
        raise InputError(f"unknown emotion {emotion!r}; the archive has {', '.join(c for c in EMOTIONS if c in seen)}")
    if best is None:
        return pd.DataFrame(columns=["source", "frame", "time_s", "face_id", "emotion", "score", "n_faces"])
    best = _rank(best)
    return (best.head(top) if top is not None else best).reset_index(drop=True)


def _rank(df: Any) -> Any:
    return df.sort_values(["score", "source", "frame", "face_id"], ascending=[False, True, True, True],
                          kind="stable")


# ================================================================================================ contact sheet


def _frame_image(source: str, kind: str, time_s: float) -> np.ndarray:
    from ferkit.io import iter_frames, load_image, media_kind

    source = unprintable(source)  # the file behind a name written with \\xNN escapes
    if kind == "video" or media_kind(source) == "video":
        with iter_frames(source, start=max(0.0, float(time_s) - 1e-3)) as stream:
            for fr in stream:
                return fr.image
        raise InputError(f"{source}: no frame at {time_s:.2f} s")
    return load_image(source)


SHEET_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


def _sheet_extension(path: str | os.PathLike[str]) -> str:
    """The image format of a contact sheet, from its extension; :class:`OutputError` for another extension."""
    from ferkit.errors import OutputError

    ext = Path(path).suffix.lower()
    if ext not in SHEET_EXTENSIONS:
        raise OutputError(f"contact sheet {os.fspath(path)!r}: give a {', '.join(SHEET_EXTENSIONS)} file name")
    return ext


def contact_sheet(matches: Any, path: str | os.PathLike[str], *, tile: int = 160, columns: int = 8,
                  margin: float = 0.15) -> int:
    """Write a grid image of the faces in ``matches`` (rows of :func:`search_archive`) to ``path`` (.jpg/.png),
    each labelled with its emotion and probability; returns the number of faces drawn (unreadable ones skipped).
    """
    import cv2

    cells: list[np.ndarray] = []
    cache: dict[tuple[str, float], np.ndarray | None] = {}
    for r in matches.itertuples(index=False):
        key = (r.source, float(r.time_s))
        if key not in cache:
            if len(cache) > 8:
                cache.pop(next(iter(cache)))
            try:
                cache[key] = _frame_image(r.source, "", r.time_s)
            except Exception:  # noqa: BLE001 - a moved or unreadable file: skip its faces
                cache[key] = None
        img = cache[key]
        if img is None:
            continue
        h, w = img.shape[:2]
        side = max(float(r.w), float(r.h)) * (1 + 2 * margin)
        cx, cy = float(r.x) + float(r.w) / 2, float(r.y) + float(r.h) / 2
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        crop = cv2.resize(img[y0:y1, x0:x1], (tile, tile), interpolation=cv2.INTER_AREA)
        cell = np.full((tile + 22, tile, 3), 255, np.uint8)
        cell[:tile] = crop
        cv2.putText(cell, f"{r.emotion} {float(r.score):.2f}", (4, tile + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (20, 20, 20), 1, cv2.LINE_AA)
        cells.append(cell)
    if not cells:
        return 0
    cols = min(columns, len(cells))
    rows = -(-len(cells) // cols)
    ch, cw = cells[0].shape[:2]
    sheet = np.full((rows * (ch + 4) + 4, cols * (cw + 4) + 4, 3), 235, np.uint8)
    for i, c in enumerate(cells):
        y, x = 4 + (i // cols) * (ch + 4), 4 + (i % cols) * (cw + 4)
        sheet[y:y + ch, x:x + cw] = c
    ext = _sheet_extension(path)
    ok, buf = cv2.imencode(ext, sheet)
    if not ok:  # pragma: no cover
        raise InputError(f"cannot encode {path}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(path), buf.tobytes())
    return len(cells)


# ================================================================================================ sidecars


def sidecar_path(source: str, out_dir: str | os.PathLike[str] | None, suffix: str) -> Path:
    """Where the sidecar of ``source`` goes: next to it, or under ``out_dir`` mirroring its absolute path."""
    p = Path(source)
    if out_dir is None:
        return p.with_name(p.name + suffix)
    rel = Path(*p.absolute().parts[1:])
    return Path(out_dir) / rel.with_name(rel.name + suffix)


def _is_sidecar(path: Path) -> bool:
    """True for a JSON file this module wrote (``"generator": "ferkit"``)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
        return head.lstrip().startswith(b"{") and b'"generator": "ferkit"' in head
    except OSError:
        return False


def write_sidecars(root: str | os.PathLike[str], *, out_dir: str | os.PathLike[str] | None = None,
                   suffix: str = ".ferkit.json", min_prob: float = 0.5) -> tuple[int, list[str]]:
    """One JSON sidecar per analysed photo of the archive (faces, their expressions, and tags such as
    ``emotion/happy``, ``sentiment/positive``, ``faces/2``); tags need a face probability >= ``min_prob``.

    Returns (sidecars written, problems). Photos without faces get a sidecar with ``faces/0``. ``suffix`` must be
    a plain file-name ending (a sidecar never replaces its photo).
    """
    if not suffix or not suffix.strip() or any(c in suffix for c in "/\\\0") or suffix in (".", ".."):
        raise InputError(f"sidecar suffix {suffix!r} must be a non-empty file-name ending such as .ferkit.json "
                         "(a sidecar must never replace its photo)")
    from ferkit.io.media import MEDIA_EXTENSIONS

    if "." in suffix and "." + suffix.rsplit(".", 1)[1].lower() in MEDIA_EXTENSIONS:
        raise InputError(f"sidecar suffix {suffix!r} ends like an image or video: the next batch would take the "
                         "sidecars for photos; use an ending such as .ferkit.json")
    import pyarrow.parquet as pq

    arch = Archive(root, create=False)
    written, problems = 0, []
    for rec in sorted(arch.records().values(), key=lambda r: r.source):
        if rec.kind != "image" or rec.status not in ("ok", "no_face"):
            continue
        if not os.path.isfile(rec.source):  # moved or deleted since the batch: no sidecar for a photo not there
            problems.append(f"a sidecar for {printable(rec.source)}: the photo is not there now (moved or deleted?)")
            continue
        faces: list[dict[str, Any]] = []
        tags: set[str] = {f"faces/{rec.faces}"}
        if rec.part and (arch.parts / rec.part).is_file():
            df = pq.read_table(arch.parts / rec.part).to_pandas().drop(columns=["landmarks"], errors="ignore")
            classes = class_columns(df)
            for r in df.to_dict("records"):
                p = float(r[r["emotion"]])
                faces.append({"face_id": int(r["face_id"]),
                              "box": {k: round(float(r[k]), 1) for k in ("x", "y", "w", "h")},
                              "emotion": r["emotion"], "probability": round(p, 4), "sentiment": r["sentiment"],
                              "probabilities": {c: round(float(r[c]), 4) for c in classes}})
                if p >= min_prob:
                    tags.update((f"emotion/{r['emotion']}", f"sentiment/{r['sentiment']}"))
        doc = {"source": rec.source, "generator": "ferkit", "size": rec.size, "mtime_ns": rec.mtime_ns,
               "faces": faces, "tags": sorted(tags)}
        target = sidecar_path(rec.source, out_dir, suffix)
        if target.exists() and not _is_sidecar(target):
            problems.append(f"{printable(str(target))}: exists and is not a ferkit sidecar: left alone")
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, (json.dumps(doc, indent=1) + "\n").encode())
            written += 1
        except OSError as exc:
            problems.append(f"{target}: {exc.strerror or exc}")
    return written, problems
