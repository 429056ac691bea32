"""Typed results of :func:`ferkit.analyze`: one row per face per analysed frame, plus a status per source.

Rows are stored column-wise (numpy arrays in :class:`FaceTable` chunks, one source per chunk), so a video with
100,000 faces costs a few MB. Columns, in order (see :func:`columns`)::

    source, frame, time_s, face_id, x, y, w, h, det_score, emotion, sentiment, sentiment_score, sharpness,
    <one probability column per class: angry ... contempt>, [landmarks]

* ``frame`` is the frame number in the video (0 for a photo), ``time_s`` its presentation time.
* ``face_id`` numbers the faces of one frame (0, 1, ...), unless a tracker assigned ids that are stable across
  frames (``Analyzer(tracker=...)``).
* ``sharpness`` is the variance of the Laplacian of the aligned grey face crop (48 px): about 700-4,000 for
  sharp faces, below ~60 for visibly blurred ones (used by the video quality flags).
* ``x, y, w, h`` is the face box in pixels of the (upright) image; ``det_score`` the detector's confidence
  (for a frame where the face was followed by the landmark tracker rather than detected: the score of its last
  detection; ``NaN`` for an input that was taken as a face crop).
* ``emotion`` is the most probable class; ``sentiment`` is ``negative`` / ``neutral`` / ``positive``, the
  argmax of the class probabilities summed by a sentiment map (:data:`ferkit.labels.SENTIMENT_MAPS`);
  ``sentiment_score`` is ``P(positive) - P(negative)`` in [-1, 1].
* ``landmarks`` (only when asked for): the 468 mesh points as ``[[x, y], ...]`` in image pixels: a native
  list column in pandas / Parquet / JSON Lines, a JSON-encoded list in CSV (``numpy.array(json.loads(cell))``
  gives a (468, 2) array). Empty (``None``) when the mesh failed on that face.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import numpy as np

from ferkit.labels import SENTIMENTS, sentiment_matrix

__all__ = [
    "BASE_COLUMNS",
    "AnalysisResults",
    "FaceRow",
    "FaceTable",
    "SourceStatus",
    "columns",
]

#: Columns before the per-class probability columns.
BASE_COLUMNS: tuple[str, ...] = (
    "source", "frame", "time_s", "face_id", "x", "y", "w", "h", "det_score", "emotion", "sentiment",
    "sentiment_score", "sharpness",
)

Status = Literal["ok", "no_face", "partial", "failed"]


def columns(classes: Sequence[str], landmarks: bool = False) -> list[str]:
    """Column names of a result table for a model with ``classes``."""
    return [*BASE_COLUMNS, *classes, *(["landmarks"] if landmarks else [])]


def arrow_schema(classes: Sequence[str], landmarks: bool = False) -> Any:
    """The ``pyarrow.Schema`` of result rows (so every Parquet file, even one without rows, has the same types)."""
    import pyarrow as pa

    types = {"source": pa.large_string(), "frame": pa.int64(), "time_s": pa.float64(), "face_id": pa.int32(),
             "emotion": pa.large_string(), "sentiment": pa.large_string(),
             "landmarks": pa.list_(pa.list_(pa.float64()))}
    return pa.schema([(c, types.get(c, pa.float32())) for c in columns(classes, landmarks)])


# ================================================================================================ status


@dataclass
class SourceStatus:
    """What happened to one input.

    ``status``: ``ok`` (faces found), ``no_face`` (analysed, no face), ``partial`` (a video that stopped early:
    the rows up to ``stopped_at_s`` are kept, ``reason`` says why) or ``failed`` (nothing analysed, ``reason``).
    ``frames``: frames analysed; ``frames_with_faces``; ``faces``: rows produced; ``frames_lost``: frames of a
    damaged video that could not be decoded (skipped; ``time_s`` of the others stays exact).
    """

    source: str
    kind: str = "image"
    status: Status = "ok"
    reason: str | None = None
    frames: int = 0
    frames_with_faces: int = 0
    faces: int = 0
    stopped_at_s: float | None = None
    duration_s: float | None = None
    frames_lost: int = 0

    @property
    def ok(self) -> bool:
        """True when the source was analysed completely (with or without faces)."""
        return self.status in ("ok", "no_face")

    @property
    def clean(self) -> bool:
        """Analysed completely with nothing to report: ``ok`` and no damaged frames (what exit status 0 needs)."""
        return self.ok and not self.frames_lost

    def describe(self) -> str:
        """One line for users."""
        if self.status == "failed":
            reason = self.reason or "failed"
            return reason if self.source in reason else f"{self.source}: {reason}"
        what = f"{self.faces} face{'s' if self.faces != 1 else ''}"
        if self.kind == "video":
            what += f" in {self.frames_with_faces} of {self.frames} frames"
        if self.status == "partial":
            at = f"{self.stopped_at_s:.1f} s" if self.stopped_at_s is not None else "the start"
            of = f" of {self.duration_s:.1f} s" if self.duration_s else ""
            return f"{self.source}: {what}; stopped at {at}{of}: {self.reason}"
        lost = f"; {damaged_frames(self.frames_lost)}" if self.frames_lost else ""
        return (f"{self.source}: {what}" if self.faces else f"{self.source}: no face") + lost


# ================================================================================================ tables


@dataclass(eq=False)
class FaceTable:
    """Rows of one source (a photo, or a run of video frames), column-wise.

    ``boxes`` float32 (n, 4) x, y, w, h; ``det_score`` float32 (n,); ``probs`` float32 (n, n_classes);
    ``landmarks`` float32 (n, 468, 2) with NaN rows where the mesh failed, or ``None`` when not kept.
    """

    source: str
    frame: np.ndarray
    time_s: np.ndarray
    face_id: np.ndarray
    boxes: np.ndarray
    det_score: np.ndarray
    probs: np.ndarray
    landmarks: np.ndarray | None = None
    sharpness: np.ndarray | None = None  # (n,) float32 variance of the Laplacian of the aligned crop

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    def sharpness_or_nan(self) -> np.ndarray:
        return self.sharpness if self.sharpness is not None else np.full(len(self), np.nan, np.float32)

    @classmethod
    def empty(cls, source: str, n_classes: int, landmarks: bool = False) -> FaceTable:
        return cls(source, np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.int32),
                   np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, n_classes), np.float32),
                   np.zeros((0, 468, 2), np.float32) if landmarks else None, np.zeros(0, np.float32))

    @classmethod
    def concat(cls, tables: Sequence[FaceTable]) -> FaceTable:
        """One table from several of the same source (in order)."""
        if len(tables) == 1:
            return tables[0]
        lm = None if any(t.landmarks is None for t in tables) else np.concatenate([t.landmarks for t in tables])
        return cls(tables[0].source, *(np.concatenate([getattr(t, k) for t in tables])
                                       for k in ("frame", "time_s", "face_id", "boxes", "det_score", "probs")),
                   landmarks=lm, sharpness=np.concatenate([t.sharpness_or_nan() for t in tables]))


def _sentiments(probs: np.ndarray, smat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels index (n,), score (n,)) from probabilities and a (C, 3) sentiment matrix."""
    s = probs.astype(np.float32) @ smat
    return s.argmax(1), (s[:, 2] - s[:, 0]).astype(np.float32)


@dataclass(frozen=True)
class FaceRow:
    """One face in one frame (what iterating over :class:`AnalysisResults` gives)."""

    source: str
    frame: int
    time_s: float
    face_id: int
    box: tuple[float, float, float, float]
    det_score: float
    emotion: str
    sentiment: str
    sentiment_score: float
    probabilities: dict[str, float] = field(compare=False)  # (a dict: rows are compared by their other fields)
    landmarks: np.ndarray | None = field(default=None, compare=False)  # (an array has no single truth value)
    sharpness: float = field(default=float("nan"), compare=False)  # NaN when unknown (NaN != NaN)

    def as_dict(self) -> dict[str, Any]:
        """The flat row (result columns)."""
        x, y, w, h = self.box
        d: dict[str, Any] = {"source": self.source, "frame": self.frame, "time_s": self.time_s,
                             "face_id": self.face_id, "x": x, "y": y, "w": w, "h": h, "det_score": self.det_score,
                             "emotion": self.emotion, "sentiment": self.sentiment,
                             "sentiment_score": self.sentiment_score, "sharpness": self.sharpness,
                             **self.probabilities}
        return d


# ================================================================================================ results


@dataclass(eq=False)
class AnalysisResults:
    """All rows of an analysis plus one :class:`SourceStatus` per input.

    Iterate for :class:`FaceRow` objects; ``len()`` is the number of rows; ``to_pandas()``, ``to_records()`` and
    ``save(path)`` give the table (columns: :func:`columns`). Column arrays: :attr:`boxes`,
    :attr:`probabilities`, :attr:`emotions`, :attr:`sentiments`, :attr:`sentiment_scores`...
    """

    classes: tuple[str, ...]
    sentiment_map: str | dict[str, str] = "valence"
    tables: list[FaceTable] = field(default_factory=list)
    statuses: list[SourceStatus] = field(default_factory=list)
    with_landmarks: bool = False

    def __post_init__(self) -> None:
        self.classes = tuple(self.classes)
        self._smat = sentiment_matrix(self.classes, self.sentiment_map)
        self._cache: FaceTable | None = None

    # -- building -------------------------------------------------------------------------------------------
    def add(self, table: FaceTable) -> None:
        """Append rows (used by the pipeline)."""
        if len(table):
            self.tables.append(table)
            self._cache = None

    @property
    def _all(self) -> FaceTable:
        if self._cache is None:
            if not self.tables:
                self._cache = FaceTable.empty("", len(self.classes), self.with_landmarks)
            else:
                self._cache = FaceTable.concat(self.tables)
        return self._cache

    # -- columns -------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return sum(len(t) for t in self.tables)

    @property
    def columns(self) -> list[str]:
        return columns(self.classes, self.with_landmarks)

    @property
    def sources(self) -> np.ndarray:
        """(n,) source of each row (object array of str)."""
        return np.concatenate([np.full(len(t), t.source, dtype=object) for t in self.tables]) if self.tables \
            else np.zeros(0, object)

    @property
    def frames(self) -> np.ndarray:
        return self._all.frame

    @property
    def times(self) -> np.ndarray:
        return self._all.time_s

    @property
    def face_ids(self) -> np.ndarray:
        return self._all.face_id

    @property
    def boxes(self) -> np.ndarray:
        """(n, 4) float32 x, y, w, h."""
        return self._all.boxes

    @property
    def det_scores(self) -> np.ndarray:
        return self._all.det_score

    @property
    def probabilities(self) -> np.ndarray:
        """(n, n_classes) float32, columns in :attr:`classes` order."""
        return self._all.probs

    @property
    def landmarks(self) -> np.ndarray | None:
        """(n, 468, 2) float32 (NaN where the mesh failed), or ``None`` if not asked for."""
        return self._all.landmarks if self.with_landmarks else None

    @property
    def emotions(self) -> np.ndarray:
        """(n,) most probable class name of each row."""
        return np.asarray(self.classes, dtype=object)[self.probabilities.argmax(1)] if len(self) \
            else np.zeros(0, object)

    @property
    def sentiments(self) -> np.ndarray:
        idx, _ = _sentiments(self.probabilities, self._smat)
        return np.asarray(SENTIMENTS, dtype=object)[idx] if len(self) else np.zeros(0, object)

    @property
    def sentiment_scores(self) -> np.ndarray:
        """(n,) P(positive) - P(negative)."""
        return _sentiments(self.probabilities, self._smat)[1]

    # -- status --------------------------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        """True when every source was analysed completely."""
        return all(s.ok for s in self.statuses)

    @property
    def failed(self) -> list[SourceStatus]:
        """Sources that failed or stopped early."""
        return [s for s in self.statuses if not s.ok]

    def status(self, source: str | os.PathLike[str]) -> SourceStatus:
        """The status of one source (by the name used in the ``source`` column)."""
        name = os.fspath(source)
        for s in self.statuses:
            if s.source == name:
                return s
        raise KeyError(f"no source {name!r} in these results")

    def summary(self, by: str | None = None, **options: Any) -> Any:
        """Readable multi-line summary: one line per source, then per-emotion counts.

        With ``by`` (``"video"``, ``"track"`` or ``"interval"``): a summary ``DataFrame`` from the video analytics
        (:meth:`analytics`; ``options`` are :class:`ferkit.video.VideoSettings` keywords)."""
        if by is not None:  # video analytics hook (ferkit.video)
            return self.analytics(**options).summary(by)
        lines = [s.describe() for s in self.statuses]
        if len(self):
            counts = {c: int(n) for c, n in zip(self.classes, np.bincount(self.probabilities.argmax(1),
                                                                             minlength=len(self.classes)))}
            top = ", ".join(f"{c} {n}" for c, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n)
            lines.append(f"{len(self)} face{'s' if len(self) != 1 else ''}: {top}")
        return "\n".join(lines)

    # -- video analytics (ferkit.video): thin hooks ---------------------------------------------------------
    def analytics(self, **options: Any) -> Any:
        """A :class:`ferkit.video.VideoAnalytics` of these rows: tracks, smoothing, summaries, verdicts, reports
        (``options``: :class:`ferkit.video.VideoSettings` keywords, e.g. ``smooth_s=0.5``)."""
        from ferkit.video import VideoAnalytics

        return VideoAnalytics.from_results(self, **options)

    def tracks(self, **options: Any) -> Any:
        """The rows as a ``DataFrame`` with stable per-person ``face_id`` (tracked), ``quality`` and
        ``low_quality`` columns (see :meth:`analytics`)."""
        return self.analytics(**options).tracks()

    def report(self, path: str | os.PathLike[str], *, thumbnails: bool = True, title: str | None = None,
               **options: Any) -> Any:
        """Write an HTML report of these videos (see :meth:`ferkit.video.VideoAnalytics.report`); ``options``
        are :class:`ferkit.video.VideoSettings`."""
        return self.analytics(**options).report(path, thumbnails=thumbnails, title=title)

    def __repr__(self) -> str:
        return (f"<AnalysisResults {len(self)} faces from {len(self.statuses)} source"
                f"{'s' if len(self.statuses) != 1 else ''}{'' if self.ok else f', {len(self.failed)} failed'}>")

    # -- rows ----------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[FaceRow]:
        for t in self.tables:
            yield from iter_rows(t, self.classes, self._smat)

    def __getitem__(self, i: int) -> FaceRow:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"row {i} out of range ({n} rows)")
        for t in self.tables:
            if i < len(t):
                return next(iter_rows(t, self.classes, self._smat, start=i, stop=i + 1))
            i -= len(t)
        raise IndexError(i)  # pragma: no cover

    def to_records(self, landmarks: bool | None = None) -> list[dict[str, Any]]:
        """Rows as a list of plain dicts (result columns; ``landmarks`` as nested lists)."""
        lm = self.with_landmarks if landmarks is None else landmarks and self.with_landmarks
        out: list[dict[str, Any]] = []
        for t in self.tables:
            out.extend(table_records(t, self.classes, self._smat, lm))
        return out

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` with the result columns (``landmarks``: a column of (468, 2) arrays)."""
        import pandas as pd

        cols = self.columns
        frames = [table_frame(t, self.classes, self._smat, self.with_landmarks) for t in self.tables]
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=_EMPTY_DTYPES.get(c, "float32")) for c in cols})
        return pd.concat(frames, ignore_index=True)[cols] if len(frames) > 1 else frames[0]

    def save(self, path: str | os.PathLike[str] | IO[str], format: str | None = None) -> None:
        """Write the rows to CSV / TSV / JSON Lines / JSON / Parquet (by extension, or ``format``), atomically;
        ``"-"`` writes JSON Lines to standard output."""
        from ferkit.io import open_sink

        with open_sink(path, format=format, columns=self.columns,
                       schema=arrow_schema(self.classes, self.with_landmarks)) as sink:
            write_tables(sink, self.tables, self.classes, self._smat, self.with_landmarks)


_EMPTY_DTYPES = {"source": "object", "emotion": "object", "sentiment": "object", "landmarks": "object",
                 "frame": "int64", "face_id": "int32", "time_s": "float64"}


# ================================================================================================ conversions


def iter_rows(t: FaceTable, classes: Sequence[str], smat: np.ndarray, start: int = 0,
              stop: int | None = None) -> Iterator[FaceRow]:
    """:class:`FaceRow` objects of a table."""
    sl = slice(start, stop)
    probs = t.probs[sl]
    sidx, sscore = _sentiments(probs, smat)
    arg = probs.argmax(1) if len(probs) else np.zeros(0, np.int64)
    boxes = t.boxes[sl].tolist()
    sharp = t.sharpness_or_nan()
    for k, i in enumerate(range(start, start + len(probs))):
        lm = None
        if t.landmarks is not None:
            pts = t.landmarks[i]
            lm = None if np.isnan(pts[0, 0]) else pts
        yield FaceRow(t.source, int(t.frame[i]), float(t.time_s[i]), int(t.face_id[i]), tuple(boxes[k]),
                      float(t.det_score[i]), classes[arg[k]], SENTIMENTS[sidx[k]], float(sscore[k]),
                      dict(zip(classes, probs[k].tolist())), lm, float(sharp[i]))


def _landmark_lists(lm: np.ndarray) -> list[list[list[float]] | None]:
    out: list[list[list[float]] | None] = []
    rounded = np.round(lm.astype(np.float64), 2)
    for pts in rounded:
        out.append(None if math.isnan(pts[0, 0]) else pts.tolist())
    return out


def table_columns(t: FaceTable, classes: Sequence[str], smat: np.ndarray,
                  landmarks: bool = False) -> dict[str, Any]:
    """Column name -> numpy array / list for one table (the order of :func:`columns`)."""
    n = len(t)
    sidx, sscore = _sentiments(t.probs, smat)
    cols: dict[str, Any] = {
        "source": np.full(n, printable(t.source), dtype=object),
        "frame": t.frame.astype(np.int64),
        "time_s": t.time_s.astype(np.float64),
        "face_id": t.face_id.astype(np.int32),
        "x": t.boxes[:, 0], "y": t.boxes[:, 1], "w": t.boxes[:, 2], "h": t.boxes[:, 3],
        "det_score": t.det_score,
        "emotion": np.asarray(classes, dtype=object)[t.probs.argmax(1)] if n else np.zeros(0, object),
        "sentiment": np.asarray(SENTIMENTS, dtype=object)[sidx] if n else np.zeros(0, object),
        "sentiment_score": sscore,
        "sharpness": t.sharpness_or_nan(),
    }
    for j, c in enumerate(classes):
        cols[c] = t.probs[:, j]
    if landmarks:
        cols["landmarks"] = _landmark_lists(t.landmarks) if t.landmarks is not None else [None] * n
    return cols


def damaged_frames(n: int) -> str:
    """``"N damaged frames could not be decoded (skipped)"``: the one wording of a video's lost frames."""
    return f"{n} damaged frame{'s' if n != 1 else ''} could not be decoded (skipped)"


def printable(name: str) -> str:
    """A file name as text every writer can encode: bytes that are not UTF-8 (kept by Python as surrogates)
    become ``\\xNN`` escapes."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def unprintable(name: str) -> str:
    """The file name :func:`printable` made text of (``\\xNN`` escapes of bytes 0x80-0xFF back to the surrogates
    Python uses for them), to open the file again.

    A valid UTF-8 name may itself contain the characters ``\\xNN`` (``printable`` leaves it alone): when the name
    as written exists and the decoded one does not, the name is returned as written."""
    import os
    import re

    if "\\x" not in name:
        return name
    decoded = re.sub(r"\\x([89a-f][0-9a-f])", lambda m: chr(0xDC00 + int(m.group(1), 16)), name)
    if decoded != name and os.path.lexists(name) and not os.path.lexists(decoded):
        return name
    return decoded


def table_records(t: FaceTable, classes: Sequence[str], smat: np.ndarray,
                  landmarks: bool = False) -> list[dict[str, Any]]:
    """Rows of one table as plain dicts (Python scalars)."""
    cols = table_columns(t, classes, smat, landmarks)
    names = list(cols)
    values = [v.tolist() if isinstance(v, np.ndarray) else v for v in cols.values()]
    return [dict(zip(names, row)) for row in zip(*values)]


def table_frame(t: FaceTable, classes: Sequence[str], smat: np.ndarray, landmarks: bool = False) -> Any:
    """One table as a ``pandas.DataFrame`` (landmarks as (468, 2) arrays, ``None`` where missing)."""
    import pandas as pd

    cols = table_columns(t, classes, smat, False)
    if landmarks:
        lm = t.landmarks
        cols["landmarks"] = [None if lm is None or np.isnan(p[0, 0]) else p for p in
                             (lm if lm is not None else [None] * len(t))]
    return pd.DataFrame(cols)


def write_tables(sink: Any, tables: Iterable[FaceTable], classes: Sequence[str], smat: np.ndarray,
                 landmarks: bool = False) -> int:
    """Write tables to an open :class:`ferkit.io.RowSink`; returns the number of rows written."""
    n = 0
    for t in tables:
        if not len(t):
            continue
        if sink.format == "parquet":
            import pandas as pd

            cols = table_columns(t, classes, smat, landmarks)
            n += sink.write(pd.DataFrame(cols))
        else:
            n += sink.write(table_records(t, classes, smat, landmarks))
    return n
