from __future__ import annotations

import json

import numpy as np
import pytest

from ferkit.labels import EMOTIONS
from ferkit.video import VideoAnalytics, face_quality, smooth_probabilities, summarize, verdict

C = list(EMOTIONS)


def onehot(labels, conf=0.9):
    p = np.full((len(labels), 8), (1 - conf) / 7)
    for i, lab in enumerate(labels):
        p[i, C.index(lab)] = conf
    return p


def test_verdict_methods():
    # 60 % neutral frames (onset / offset), 40 % sad apex: majority and mean say neutral, peak says sad
    p = onehot(["neutral"] * 6 + ["sad"] * 4)
    assert verdict(p, C, "majority") == "neutral"
    assert verdict(p, C, "mean") == "neutral"
    assert verdict(p, C, "peak") == "sad"
    assert verdict(p, C, "weighted", neutral_weight=0.3) == "sad"
    assert verdict(np.zeros((0, 8)), C) is None
    assert verdict(onehot(["neutral"] * 10), C) == "neutral"
    with pytest.raises(ValueError):
        verdict(p, C, "nope")


def test_majority_and_mean_can_differ():
    p = np.array([[0.0] * 3 + [0.4, 0.35] + [0.0] * 2 + [0.25]] * 3 + [[0.0] * 3 + [0.0, 1.0] + [0.0] * 3] * 2)
    assert verdict(p, C, "majority") == "happy"
    assert verdict(p, C, "mean") == "sad"


def test_quality_size_score_and_pose():
    q = face_quality(np.array([[0, 0, 10, 10], [0, 0, 32, 32], [0, 0, 100, 100]]), np.array([0.9, 0.9, np.nan]))
    assert q[0] == 0 and 0.4 < q[1] < 0.6 and q[2] == 1
    lm = np.zeros((2, 468, 2))
    lm[:, 33], lm[:, 263] = (40, 50), (60, 50)
    lm[0, 1], lm[1, 1] = (50, 60), (66, 60)  # frontal / strongly turned
    q = face_quality(np.array([[0, 0, 100, 100]] * 2), None, lm)
    assert q[0] == 1 and q[1] == 0


def test_smoothing_mean_and_ema():
    t = np.arange(10) / 10
    p = onehot(["happy", "sad"] * 5)
    m = smooth_probabilities(t, p, 0.25, "mean")
    assert np.allclose(m.sum(1), 1, atol=1e-5)
    assert np.abs(m[5:, C.index("happy")] - m[5:, C.index("sad")]).max() < 0.5
    e = smooth_probabilities(t, p, 0.25, "ema")
    assert np.allclose(e.sum(1), 1, atol=1e-5) and np.allclose(e[0], p[0])
    assert np.allclose(smooth_probabilities(t, p, 0.0), p)
    # a long gap resets the EMA
    e2 = smooth_probabilities(np.array([0.0, 100.0]), onehot(["happy", "sad"]), 0.5)
    assert e2[1].argmax() == C.index("sad") and e2[1, C.index("sad")] > 0.89


def _two_people(make_rows):
    a = [(f, (100, 100, 80, 80), "happy" if f < 30 else "neutral") for f in range(50)]
    b = [(f, (400, 100, 20, 20), "angry") for f in range(50)]  # small face: low quality
    return make_rows({0: a, 1: b})


def test_summaries_video_track_interval(make_rows):
    va = VideoAnalytics.from_frame(_two_people(make_rows), sources=["v.mp4", "empty.mp4"])
    t = va.tracks()
    assert {"quality", "low_quality"} <= set(t.columns) and t["face_id"].nunique() == 2
    v = va.summary("video")
    assert list(v["source"]) == ["v.mp4", "empty.mp4"]
    row = v.iloc[0]
    assert row["rows"] == 50 and row["flagged"] == 50 and row["tracks"] == 2  # the 20 px face is left out
    assert row["share_happy"] == pytest.approx(0.6) and row["verdict"] == "happy"
    # share_neutral is the emotion's share (not overwritten by the sentiment's): emotion shares sum to 1
    assert row["share_neutral"] == pytest.approx(0.4)
    assert sum(row[f"share_{c}"] for c in EMOTIONS) == pytest.approx(1.0)
    assert row["sentiment_share_positive"] == pytest.approx(0.6)
    assert row["sentiment_share_neutral"] == pytest.approx(0.4)
    assert v.iloc[1]["status"] == "no_face" and v.iloc[1]["rows"] == 0
    tr = va.summary("track")
    assert list(tr["status"]) == ["ok", "low_quality"]
    va0 = VideoAnalytics.from_frame(_two_people(make_rows), min_quality=0.0)
    assert va0.summary("video").iloc[0]["rows"] == 100
    iv = VideoAnalytics.from_frame(_two_people(make_rows), interval_s=1.0).summary("interval")
    assert set(iv["interval_start"]) == {0.0, 1.0}
    ivf = summarize(va.tracks(), "interval", interval_frames=10)
    assert len(ivf) == 10


def test_sentiment_maps_and_score(make_rows):
    df = make_rows({0: [(f, (100, 100, 80, 80), "surprise") for f in range(10)]})
    val = VideoAnalytics.from_frame(df).summary("video").iloc[0]
    deb = VideoAnalytics.from_frame(df, sentiment_map="debate").summary("video").iloc[0]
    assert val["sentiment"] == "neutral" and deb["sentiment"] == "positive"
    # surprise is a neutral sentiment but not the neutral emotion: the two shares are separate columns
    assert val["share_neutral"] == 0.0 and val["share_surprise"] == 1.0
    assert val["sentiment_share_neutral"] == 1.0
    assert deb["sentiment_score"] == pytest.approx(0.9 + 0.1 / 7 - 2 * 0.1 / 7 - 0.1 / 7, abs=1e-4)
    df2 = make_rows({0: [(f, (100, 100, 80, 80), "fear") for f in range(10)]})
    assert VideoAnalytics.from_frame(df2).summary("video").iloc[0]["sentiment"] == "negative"
    assert VideoAnalytics.from_frame(df2, sentiment_map="debate").summary("video").iloc[0]["sentiment"] == "neutral"


def test_seven_class_tables(make_rows):
    df = make_rows({0: [(f, (100, 100, 80, 80), "sad") for f in range(10)]}).drop(columns=["contempt"])
    v = VideoAnalytics.from_frame(df).summary("video")
    assert "share_contempt" not in v.columns and v.iloc[0]["verdict"] == "sad"


def test_smoothing_option_changes_rows_not_count(make_rows):
    rows = [(f, (100, 100, 80, 80), "happy" if f % 2 else "sad") for f in range(40)]
    va = VideoAnalytics.from_frame(make_rows({0: rows}), smooth_s=0.5)
    t = va.tracks()
    assert len(t) == 40 and t["happy"].std() < 0.2


def test_empty_inputs():
    import pandas as pd

    from ferkit.results import columns

    df = pd.DataFrame(columns=columns(EMOTIONS))
    va = VideoAnalytics.from_frame(df, sources=["none.mp4"])
    v = va.summary("video")
    assert len(v) == 1 and v.iloc[0]["status"] == "no_face"
    assert len(va.summary("track")) == 0 and len(va.timeline("none.mp4")) == 0


def test_saved_rows_with_landmarks_score_head_turns(make_rows):
    """A rows file written with --landmarks keeps the frontalness term of the quality."""
    df = make_rows({0: [(f, (100, 100, 80, 80), "happy") for f in range(4)]})
    lm = np.zeros((468, 2))
    lm[33], lm[263] = (120, 130), (160, 130)  # eyes 40 px apart
    turned = lm.copy()
    lm[1], turned[1] = (140, 150), (170, 150)  # nose under the eyes' midpoint / 0.75 eye distances aside
    df["landmarks"] = [json.dumps(a.tolist()) for a in (lm, turned, lm, turned)]
    q = VideoAnalytics.from_frame(df).tracks()["quality"].to_numpy()
    assert q[0] == pytest.approx(q[2]) and q[1] == pytest.approx(q[3]) and q[1] < 0.2 < q[0]


def test_video_summary_and_report_name_damaged_frames(make_rows, tmp_path):
    """A video analysed past damaged frames stays "ok" but its summary row and report say how many were lost."""
    from ferkit.results import SourceStatus
    from ferkit.video.report import write_reports

    rows = _two_people(make_rows)
    va = VideoAnalytics(rows, statuses=[SourceStatus("v.mp4", "video", "ok", frames=50, frames_lost=6),
                                        SourceStatus("w.mp4", "video", "no_face", frames=10)])
    v = va.summary("video")
    assert list(v["frames_lost"]) == [6, 0] and list(v["status"]) == ["ok", "no_face"]
    assert list(va.summary_table().query("level == 'video'")["frames_lost"]) == [6, 0]
    index, page_v, _ = write_reports(va, tmp_path / "r.html", thumbnails=False)
    for page in (index, page_v):
        assert "6 damaged frames could not be decoded (skipped)" in page.read_text()
