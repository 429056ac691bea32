"""Fixtures for the face tests: the shared sample photos/videos and shared (session-scoped) models."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

try:  # run from a plain checkout too (the package is normally installed, or pythonpath=src)
    import ferkit.face  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from ferkit.face import FaceMesh, create_detector

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    """The folder of real sample photos and videos (tests using it are skipped when absent)."""
    if not (SAMPLES / "multi_face.jpg").is_file():
        pytest.skip(f"sample media not found at {SAMPLES.resolve()}")
    return SAMPLES


def to_bgr(img: np.ndarray) -> np.ndarray:
    """Grey -> BGR, BGRA -> BGR (the tests do this themselves; the detectors also accept both)."""
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return np.ascontiguousarray(img[..., :3])
    return img


@pytest.fixture(scope="session")
def load_image(samples: Path) -> Callable[[str], np.ndarray]:
    """``load_image(name)`` -> BGR uint8 image from the samples folder (cached)."""
    cache: dict[str, np.ndarray] = {}

    def load(name: str) -> np.ndarray:
        if name not in cache:
            img = cv2.imread(str(samples / name), cv2.IMREAD_UNCHANGED)
            assert img is not None, f"cannot read {name}"
            cache[name] = to_bgr(img)
        return cache[name]

    return load


@pytest.fixture(scope="session")
def read_frames(samples: Path) -> Callable[[str, Sequence[int] | None], dict[int, np.ndarray]]:
    """``read_frames(name, indices)`` -> {index: BGR frame} read with cv2.VideoCapture (all frames if None)."""
    cache: dict[str, list[np.ndarray]] = {}

    def read(name: str, indices: Sequence[int] | None = None) -> dict[int, np.ndarray]:
        if name not in cache:
            cap = cv2.VideoCapture(str(samples / name))
            frames = []
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                frames.append(frame)
            cap.release()
            assert frames, f"cannot decode {name}"
            cache[name] = frames
        frames = cache[name]
        idx = range(len(frames)) if indices is None else indices
        return {i: frames[i] for i in idx}

    return read


@pytest.fixture(scope="session")
def detector():
    """The default detector (BlazeFace full range), shared."""
    return create_detector()


@pytest.fixture(scope="session")
def mesh() -> FaceMesh:
    """A shared face mesh."""
    return FaceMesh()
