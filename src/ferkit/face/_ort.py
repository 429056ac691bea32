"""onnxruntime session loading for the face models shipped in ``ferkit/face/assets``.

Sessions are created once per (model file, thread count) and shared: ``InferenceSession.run`` is thread-safe.
The tiny face models run fastest on one intra-op thread; parallelise across frames or processes instead.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ferkit.errors import ModelError

ASSETS_DIR = Path(__file__).resolve().parent / "assets"

_SESSIONS: dict[tuple[str, int], object] = {}
_LOCK = threading.Lock()


def asset_path(name: str) -> Path:
    """Path of a file in ``ferkit/face/assets``; :class:`ModelError` if it is missing."""
    path = ASSETS_DIR / name
    if not path.is_file():
        raise ModelError(f"face model file {name!r} is missing from {ASSETS_DIR}; reinstall ferkit")
    return path


def load_session(name: str, threads: int = 1):  # -> onnxruntime.InferenceSession
    """Shared onnxruntime CPU session for the asset ``name`` (sequential execution, ``threads`` intra-op)."""
    key = (name, int(threads))
    sess = _SESSIONS.get(key)
    if sess is not None:
        return sess
    with _LOCK:
        sess = _SESSIONS.get(key)
        if sess is None:
            path = asset_path(name)
            try:
                import onnxruntime as ort
            except ImportError as exc:  # pragma: no cover - onnxruntime is a hard dependency
                raise ModelError("onnxruntime is not installed: pip install onnxruntime") from exc
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.log_severity_level = 3
            try:
                sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own exception types
                raise ModelError(f"cannot load face model {path}: {exc}") from exc
            _SESSIONS[key] = sess
    return sess
