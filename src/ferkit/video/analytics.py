"""One object that the CLI, the Python API and batch tools share: tracked, scored rows and their summaries.

>>> from ferkit.video import VideoAnalytics
>>> va = VideoAnalytics.from_results(ferkit.analyze("talk.mp4"), smooth_s=0.5)   # doctest: +SKIP
>>> va.tracks()            # rows with stable face ids, quality and low_quality   # doctest: +SKIP
>>> va.summary("track")    # one row per person                                   # doctest: +SKIP
>>> va.report("talk.html")                                                        # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import InputError
from ferkit.labels import SENTIMENT_MAPS, SENTIMENTS, sentiment_matrix
from ferkit.results import printable  # rows carry printable source names (\\xNN for bytes that are not UTF-8)

from .aggregate import DEFAULT_VERDICT, NEUTRAL_WEIGHT, PEAK_FRACTION, VERDICT_METHODS, class_columns, face_quality
from .aggregate import summarize as _summarize
from .smoothing import smooth_rows
from .tracking import Tracker, track_rows

__all__ = ["VideoAnalytics", "VideoSettings", "read_rows"]


@dataclass
class VideoSettings:
    """Settings of the video analytics (all have defaults; shown in reports).

    ``track``: assign stable ids (:class:`~ferkit.video.tracking.Tracker`, ``max_missed`` frames);
    ``smooth_s``: window of the per-track smoothing in seconds (0 = off, the default), ``smooth_method``
    ``ema`` or ``mean``; ``min_quality``: rows below this quality are flagged and left out of summaries;
    ``verdict``: ``peak`` (default), ``mean``, ``majority`` or ``weighted``; ``interval_s`` /
    ``interval_frames``: bin size of ``summary("interval")`` (default 5 s).
    """

    track: bool = True
    max_missed: int = 25
    smooth_s: float = 0.0
    smooth_method: str = "ema"
    min_quality: float = 0.2
    sentiment_map: str | dict[str, str] = "valence"
    verdict: str = DEFAULT_VERDICT
    peak_fraction: float = PEAK_FRACTION
    neutral_weight: float = NEUTRAL_WEIGHT
    interval_s: float | None = None
    interval_frames: int | None = None
    tracker_params: dict[str, Any] = field(default_factory=dict)
    analysis: dict[str, Any] = field(default_factory=dict)  # how the rows were made (shown in reports)

    def check(self) -> None:
        if self.verdict not in VERDICT_METHODS:
            raise InputError(f"unknown verdict method {self.verdict!r}; use one of {', '.join(VERDICT_METHODS)}")
        if self.smooth_method not in ("ema", "mean"):
            raise InputError(f"unknown smoothing {self.smooth_method!r}; use ema or mean")
        if self.smooth_s < 0:
            raise InputError(f"smooth_s must be >= 0, got {self.smooth_s}")
        if isinstance(self.sentiment_map, str) and self.sentiment_map not in SENTIMENT_MAPS:
            raise InputError(f"unknown sentiment map {self.sentiment_map!r}; use one of {', '.join(SENTIMENT_MAPS)}")
        if self.max_missed < 0:
            raise InputError(f"max_missed must be >= 0, got {self.max_missed}")
        if not 0 < self.peak_fraction <= 1:
            raise InputError(f"peak_fraction must be in (0, 1], got {self.peak_fraction}")
        if not 0 <= self.min_quality <= 1:
            raise InputError(f"min_quality must be in [0, 1], got {self.min_quality}")
        if self.interval_s is not None and not self.interval_s > 0:
            raise InputError(f"the summary interval must be > 0 seconds, got {self.interval_s}")
        if self.interval_frames is not None and self.interval_frames < 1:
            raise InputError(f"the summary interval must be >= 1 frame, got {self.interval_frames}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_rows(path: str | os.PathLike[str]) -> Any:
    """A result table written by ``ferkit analyze -o`` (CSV, TSV, JSON Lines, JSON or Parquet) as a DataFrame."""
    p = Path(path)
    df = read_table(p)
    missing = [c for c in ("source", "frame", "time_s", "face_id", "x", "y", "w", "h") if c not in df.columns]
    if len(df) and (missing or not class_columns(df)):
        raise InputError(f"{p}: not a ferkit result table (missing columns: {', '.join(missing) or 'probabilities'})")
    return df


def read_table(path: str | os.PathLike[str]) -> Any:
    """Any table ferkit writes (rows or summaries; CSV, TSV, JSON Lines, JSON or Parquet) as a DataFrame."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such results file")
    suf = p.suffix.lower()
    try:
        if suf == ".parquet":
            df = pd.read_parquet(p)
        elif suf == ".jsonl":
            df = pd.read_json(p, lines=True)
        elif suf == ".json":
            df = pd.read_json(p)
        else:
            df = pd.read_csv(p, sep="\t" if suf == ".tsv" else ",")
    except Exception as exc:  # noqa: BLE001 - one clear line for any unreadable file
        raise InputError(f"{p}: cannot read a result table ({type(exc).__name__}: {exc})") from None
    return df


class VideoAnalytics:
    """Tracked, quality-scored (and optionally smoothed) rows of one or more videos, with summaries and reports.

    Build with :meth:`from_results` (an :class:`~ferkit.results.AnalysisResults`), :meth:`from_frame` (a result
    ``DataFrame``) or :meth:`from_file` (a saved result table). Sources without faces are kept (``sources``).
    """

    def __init__(self, rows: Any, sources: list[str] | None = None, statuses: list[Any] | None = None,
                 settings: VideoSettings | None = None, **options: Any) -> None:
        self.settings = settings if settings is not None else VideoSettings(**options)
        self.settings.check()
        self.statuses = list(statuses or [])
        names = [printable(s.source) for s in self.statuses] if self.statuses else [printable(s) for s in sources or []]
        for s in (rows["source"].unique().tolist() if len(rows) else []):
            if s not in names:
                names.append(s)
        self.sources: list[str] = names
        self.classes: list[str] = class_columns(rows) if len(rows) else []
        self._raw = rows
        self._rows: Any = None

    # -- constructors -----------------------------------------------------------------------------------------
    @classmethod
    def from_results(cls, results: Any, **options: Any) -> VideoAnalytics:
        """From :class:`~ferkit.results.AnalysisResults` (its sentiment map unless ``sentiment_map`` is given)."""
        options.setdefault("sentiment_map", results.sentiment_map)
        df = results.to_pandas()
        if results.landmarks is not None and len(df):
            sharp = df["sharpness"].to_numpy(np.float64) if "sharpness" in df.columns else None
            df["quality"] = face_quality(results.boxes, results.det_scores, results.landmarks, sharp)
        va = cls(df, statuses=results.statuses, **options)
        if not va.classes:
            va.classes = list(results.classes)
        return va

    @classmethod
    def from_frame(cls, df: Any, sources: list[str] | None = None, **options: Any) -> VideoAnalytics:
        """From a result ``DataFrame`` (columns of :func:`ferkit.results.columns`)."""
        return cls(df, sources=sources, **options)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> VideoAnalytics:
        """From a result table written by ``ferkit analyze -o``."""
        return cls(read_rows(path), **options)

    # -- rows -------------------------------------------------------------------------------------------------
    def tracks(self) -> Any:
        """The rows with track ids in ``face_id`` (when ``track``), smoothed probabilities (when ``smooth_s``),
        recomputed ``emotion`` / ``sentiment`` / ``sentiment_score``, plus ``quality`` and ``low_quality``."""
        if self._rows is None:
            self._rows = self._prepare()
        return self._rows

    def _prepare(self) -> Any:
        st = self.settings
        df = self._raw
        if not len(df):
            out = df.copy()
            for c in ("quality", "low_quality"):
                if c not in out.columns:
                    out[c] = np.zeros(0, np.float32 if c == "quality" else bool)
            return out
        df = df.sort_values(["source", "frame", "face_id"], kind="stable", ignore_index=True) \
            if not _sorted(df) else df
        if st.track:
            df = track_rows(df, Tracker(max_missed=st.max_missed, **st.tracker_params))
        else:
            df = df.copy()
        cls = self.classes
        if st.smooth_s > 0:
            df = smooth_rows(df, cls, st.smooth_s, st.smooth_method)  # type: ignore[arg-type]
        p = df[cls].to_numpy(np.float64)
        s = p @ sentiment_matrix(cls, st.sentiment_map).astype(np.float64)
        df["emotion"] = np.asarray(cls, dtype=object)[p.argmax(1)]
        df["sentiment"] = np.asarray(SENTIMENTS, dtype=object)[s.argmax(1)]
        df["sentiment_score"] = (s[:, 2] - s[:, 0]).astype(np.float32)
        if "quality" not in df.columns:
            det = df["det_score"].to_numpy(np.float64) if "det_score" in df.columns else None
            sharp = df["sharpness"].to_numpy(np.float64) if "sharpness" in df.columns else None
            lm = _landmarks_array(df["landmarks"]) if "landmarks" in df.columns else None
            df["quality"] = face_quality(df[["x", "y", "w", "h"]].to_numpy(np.float64), det, lm, sharp)
        df["low_quality"] = df["quality"].to_numpy() < st.min_quality
        return df

    # -- summaries --------------------------------------------------------------------------------------------
    def summary(self, by: str = "video") -> Any:
        """Summary ``DataFrame``: ``by`` = ``video`` (one row per source, no-face videos included), ``track``
        (per person) or ``interval`` (per person and time bin). See :func:`ferkit.video.aggregate.summarize`."""
        st = self.settings
        if by not in ("video", "track", "interval"):
            raise InputError(f"summary by {by!r}: use video, track or interval")
        interval_s, interval_frames = st.interval_s, st.interval_frames
        if by == "interval" and interval_s is None and interval_frames is None:
            interval_s = 5.0
        out = _summarize(self.tracks(), by, sources=self.sources if by == "video" else (),  # type: ignore[arg-type]
                         interval_s=interval_s if by == "interval" else None,
                         interval_frames=interval_frames if by == "interval" and interval_s is None else None,
                         sentiment_map=st.sentiment_map, min_quality=st.min_quality, method=st.verdict,
                         peak_fraction=st.peak_fraction, neutral_weight=st.neutral_weight)
        if by == "video" and len(out):
            known = {printable(s.source): s for s in self.statuses}
            out["status"] = [known[src].status if src in known and known[src].status in ("partial", "failed")
                             else stt for src, stt in zip(out["source"], out["status"])]
            rows = self.tracks()
            n_tracks = rows.groupby("source")["face_id"].nunique().to_dict() if len(rows) else {}
            out.insert(2, "tracks", [int(n_tracks.get(src, 0)) for src in out["source"]])
            out.insert(3, "frames_lost", [int(getattr(known.get(src), "frames_lost", 0) or 0)  # damaged, skipped
                                          for src in out["source"]])
        elif by == "video":  # nothing to summarise: the same columns, in the same order, as with rows
            head = ["source", "status", "tracks", "frames_lost", "rows", "flagged"]
            out = out.reindex(columns=head + [c for c in out.columns if c not in head])
        return out

    def summary_table(self) -> Any:
        """One table of ``video`` rows then ``track`` rows (column ``level``), as ``--summary`` writes it."""
        import pandas as pd

        v = self.summary("video")
        v.insert(0, "level", "video")
        t = self.summary("track")
        t.insert(0, "level", "track")
        if not len(t):
            return v
        out = pd.concat([v, t], ignore_index=True, sort=False)
        for c in ("tracks", "face_id"):
            out[c] = out[c].astype("Int64")
        return out

    def timeline(self, source: str | None = None) -> Any:
        """Rows of one source (default: the only one), in time order; empty for a video without faces."""
        src = self._one_source(source)
        df = self.tracks()
        if not len(df):
            return df
        return df[df["source"] == src].sort_values(["time_s", "face_id"], kind="stable", ignore_index=True)

    def _one_source(self, source: str | None) -> str:
        if source is not None:
            return source
        if len(self.sources) != 1:
            raise InputError(f"give the source: these results hold {len(self.sources)} sources")
        return self.sources[0]

    def status_of(self, source: str) -> str:
        """``ok``, ``no_face``, ``partial`` or ``failed`` (from the analysis when known, else from the rows)."""
        for s in self.statuses:
            if printable(s.source) == source:
                return str(s.status)
        df = self.tracks()
        return "ok" if len(df) and (df["source"] == source).any() else "no_face"

    # -- reports ----------------------------------------------------------------------------------------------
    def report(self, path: str | os.PathLike[str], *, thumbnails: bool = True, title: str | None = None) -> list[Path]:
        """Write an HTML report: one page per video, plus ``index.html`` beside them when there are several.

        With one source, ``path`` is the page; with several, ``path`` is the index page and the video pages
        go beside it (``<stem>_<video>.html``). Returns the pages written.
        """
        from .report import write_reports

        return write_reports(self, Path(path), thumbnails=thumbnails, title=title)


def _landmarks_array(col: Any) -> np.ndarray | None:
    """``(n, 468, 2)`` from a saved ``landmarks`` column (JSON text in CSV / JSON Lines, nested lists in Parquet;
    NaN rows where a face has none), or None when no row has them."""
    out = np.full((len(col), 468, 2), np.nan, np.float64)
    found = False
    for i, v in enumerate(col):
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError:
                continue
        try:
            a = np.asarray(v if v is not None else [], dtype=np.float64)
            if a.ndim == 1 and a.dtype == object:
                a = np.stack([np.asarray(p, np.float64) for p in v])
        except (TypeError, ValueError):
            continue
        if a.shape == (468, 2):
            out[i] = a
            found = True
    return out if found else None


def _sorted(df: Any) -> bool:
    """True when the rows are already grouped by source in frame order."""
    f = df["frame"].to_numpy()
    src = df["source"].to_numpy()
    same = src[1:] == src[:-1]
    return bool(np.all(~same | (f[1:] >= f[:-1])))
