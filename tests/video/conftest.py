from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ferkit.labels import EMOTIONS

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "samples"


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip("sample data not found")
    return SAMPLES


@pytest.fixture
def make_rows():
    return _make_rows


def _make_rows(tracks: dict[int, list[tuple[int, tuple[float, float, float, float], str]]], source: str = "v.mp4",
              fps: float = 25.0, conf: float = 0.9) -> pd.DataFrame:
    """Rows from {true_id: [(frame, box, top_emotion), ...]}; face_id = per-frame index (untracked)."""
    recs = []
    for tid, items in tracks.items():
        for frame, box, emo in items:
            p = np.full(len(EMOTIONS), (1 - conf) / (len(EMOTIONS) - 1), np.float32)
            p[EMOTIONS.index(emo)] = conf
            recs.append({"source": source, "frame": frame, "time_s": frame / fps, "true_id": tid,
                         "x": box[0], "y": box[1], "w": box[2], "h": box[3], "det_score": 0.9,
                         "emotion": emo, "sentiment": "neutral", "sentiment_score": 0.0,
                         **dict(zip(EMOTIONS, p.tolist()))})
    df = pd.DataFrame(recs).sort_values(["frame", "x"], kind="stable", ignore_index=True)
    df.insert(3, "face_id", df.groupby("frame").cumcount().astype(np.int32))
    return df
