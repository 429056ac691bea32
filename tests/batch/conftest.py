"""Fixtures of the batch tests: a small archive of sample photos (copied) with one bad and one truncated file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "samples"
PHOTOS = ("0-f1-su-ph.jpg", "single_face.jpg", "multi_face.jpg", "free-mountain-vector-01.jpg")


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"sample media not found at {SAMPLES}")
    return SAMPLES


def make_inputs(samples: Path, folder: Path, copies: int = 1) -> Path:
    """PHOTOS (``copies`` times each), plus bad.jpg (text) and trunc.jpg (a cut JPEG)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(copies):
        for name in PHOTOS:
            shutil.copyfile(samples / name, folder / (name if k == 0 else f"c{k}-{name}"))
    (folder / "bad.jpg").write_text("not an image")
    (folder / "trunc.jpg").write_bytes((samples / "single_face.jpg").read_bytes()[:5000])
    return folder


@pytest.fixture(scope="module")
def local_job(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    """(inputs, job folder, summary) of one local run with 2 workers."""
    from ferkit.batch import run_batch

    root = tmp_path_factory.mktemp("batch")
    inputs = make_inputs(samples, root / "in")
    out = root / "out"
    summary = run_batch([inputs], out, workers=2)
    return inputs, out, summary
