"""Video analytics: who showed what, when.

* :class:`Tracker`: stable ``face_id`` per person across frames (``Analyzer(tracker=Tracker())`` or
  :func:`track_rows` after the fact);
* :class:`VideoAnalytics`: tracked, quality-scored, optionally smoothed rows; summaries per video, per track and
  per interval; clip verdicts; HTML reports;
* :func:`evaluate_verdicts`: clip verdicts against gold labels (``ferkit evaluate-videos``).

The CLI (``ferkit analyze --track --summary --report``, ``ferkit report``, ``ferkit evaluate-videos``) and the
Python API share these.
"""

from __future__ import annotations

from .aggregate import DEFAULT_VERDICT, VERDICT_METHODS, face_quality, summarize, verdict
from .analytics import VideoAnalytics, VideoSettings, read_rows
from .evaluate import evaluate_verdicts, read_gold
from .smoothing import smooth_probabilities, smooth_rows
from .tracking import Tracker, assign_min_cost, track_rows

__all__ = [
    "DEFAULT_VERDICT",
    "VERDICT_METHODS",
    "Tracker",
    "VideoAnalytics",
    "VideoSettings",
    "assign_min_cost",
    "evaluate_verdicts",
    "face_quality",
    "read_gold",
    "read_rows",
    "smooth_probabilities",
    "smooth_rows",
    "summarize",
    "track_rows",
    "verdict",
]
