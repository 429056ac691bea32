"""The per-file work of a batch job: one analyzer per process (or Dask worker thread), one file per call.

Functions here run in worker processes: they must stay importable and picklable (module level, plain data).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ferkit.results import SourceStatus

__all__ = ["FileResult", "analyze_file", "init_worker", "options_digest"]

#: Analyzer options a batch job may set (others keep the analyzer's defaults).
OPTION_KEYS = ("detector", "score_threshold", "min_face_size", "max_faces", "model", "every", "fps", "start", "end",
               "detect_every", "landmarks", "sentiment_map", "batch_size", "max_pixels")

_LOCAL = threading.local()


@dataclass
class FileResult:
    """What a worker sends back for one input file: how it went (the :class:`~ferkit.results.SourceStatus` that
    ``ferkit analyze`` reports too), its rows (a pandas DataFrame, or ``None``), the model's classes, the seconds
    it took and where it ran."""

    status: SourceStatus
    seconds: float = 0.0
    worker: str = ""
    rows: Any = None
    classes: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def failed(cls, source: str, reason: str, **kw: Any) -> FileResult:
        return cls(SourceStatus(source, status="failed", reason=reason), **kw)


def options_digest(options: dict[str, Any]) -> str:
    """Short stable digest of the analysis options (part of every input's key: new options redo the files)."""
    text = json.dumps({k: options.get(k) for k in sorted(options)}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def init_worker() -> None:
    """Process-pool initializer: one OpenCV thread (onnxruntime sessions use one intra-op thread already), Ctrl-C
    ignored (a worker interrupted inside the task queue would hang the pool; the driver stops the workers), and a
    watchdog that ends the worker when the batch process that started it is gone (killed, not shut down)."""
    import signal

    import cv2

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C (sent to the whole group) is the driver's to handle
    cv2.setNumThreads(1)
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:  # re-parented: the driver died
                os._exit(1)

    threading.Thread(target=watch, name="ferkit-parent-watch", daemon=True).start()


def _analyzer(options: dict[str, Any]) -> Any:
    """The analyzer of this thread for ``options`` (models loaded once, kept for later files)."""
    key = options_digest(options)
    cache = getattr(_LOCAL, "analyzers", None)
    if cache is None:
        cache = _LOCAL.analyzers = {}
    az = cache.get(key)
    if az is None:
        import cv2

        from ferkit.pipeline import Analyzer

        cv2.setNumThreads(1)
        for old in cache.values():
            old.close()
        cache.clear()
        az = cache[key] = Analyzer(workers=1, **{k: v for k, v in options.items() if k in OPTION_KEYS})
    return az


def analyze_file(path: str, options: dict[str, Any]) -> FileResult:
    """Analyse one file with this process's analyzer; never raises for a bad file (status ``failed``)."""
    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    classes: tuple[str, ...] = ()
    try:
        az = _analyzer(options)
        t0 = time.perf_counter()  # model loading (first file of a process) is not the file's time
        classes = tuple(az.classes)
        from ferkit.results import FaceTable, table_frame

        frames = []
        status = None
        for item in az.iter_analyze([path], recursive=False):
            if isinstance(item, FaceTable):
                frames.append(table_frame(item, az.classes, az.sentiment_matrix, az.cfg.landmarks))
            else:
                status = item
        if status is None:  # pragma: no cover - the pipeline always reports a status
            raise RuntimeError("no status reported")
        rows = None
        if frames:
            import pandas as pd

            rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        res = FileResult(status, worker=worker, rows=rows, classes=classes)
    except Exception as exc:  # noqa: BLE001 - a bad file must never stop the job
        msg = " ".join(str(exc).split()) or type(exc).__name__
        res = FileResult.failed(path, f"analysis failed: {msg}"[:500], worker=worker, classes=classes)
    res.seconds = time.perf_counter() - t0
    return res
