"""tools/compare_rows.py on hand-made tables with known differences."""

from __future__ import annotations

import pandas as pd
import pytest


def _table(xs: list[float], happy: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"source": "v.mp4", "frame": range(len(xs)), "time_s": 0.0, "face_id": 0, "x": xs,
                         "y": 10.0, "w": 100.0, "h": 100.0, "det_score": 0.9,
                         "emotion": ["happy" if h > 0.5 else "neutral" for h in happy], "sentiment": "positive",
                         "sentiment_score": 0.0, "sharpness": 1.0, "happy": happy,
                         "neutral": [1 - h for h in happy]})


def test_differences_and_steadiness(load_tool):
    tool = load_tool("compare_rows")
    a = _table([0, 1, 2, 3], [0.9, 0.9, 0.8, 0.9])
    b = _table([0, 1, 5, 3], [0.9, 0.9, 0.4, 0.9])
    d = tool.differences(a, b)
    assert d["rows_box_differs"] == 1 and d["max_box_diff_px"] == 3 and d["label_differs"] == 1
    assert d["max_prob_diff"] == pytest.approx(0.4)
    s = tool.steadiness(a)
    assert s["centre_jitter_mean_px"] == pytest.approx(1.0) and s["label_flips"] == 0
    assert s["prob_l1_change_mean"] == pytest.approx((0 + 0.2 + 0.2) / 3)
