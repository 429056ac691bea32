"""The results container: rows, columns, sentiment, conversions and files (no models needed)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ferkit.labels import EMOTIONS
from ferkit.results import BASE_COLUMNS, AnalysisResults, FaceRow, FaceTable, SourceStatus, columns


def make_table(source: str = "a.jpg", n: int = 3, landmarks: bool = False, seed: int = 0) -> FaceTable:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(8), size=n).astype(np.float32)
    lm = None
    if landmarks:
        lm = rng.uniform(0, 100, (n, 468, 2)).astype(np.float32)
        lm[0] = np.nan  # the mesh failed on the first face
    return FaceTable(source, np.arange(n, dtype=np.int64), np.arange(n) / 25.0, np.zeros(n, np.int32),
                     rng.uniform(0, 100, (n, 4)).astype(np.float32), np.full(n, 0.9, np.float32), probs, lm)


@pytest.fixture
def res() -> AnalysisResults:
    r = AnalysisResults(EMOTIONS)
    r.add(make_table("a.jpg", 2))
    r.add(make_table("b.mp4", 3, seed=1))
    r.statuses += [SourceStatus("a.jpg", "image", "ok", faces=2, frames=1, frames_with_faces=1),
                   SourceStatus("b.mp4", "video", "partial", "the file ends early", frames=3, frames_with_faces=3,
                                faces=3, stopped_at_s=0.12, duration_s=1.0)]
    return r


def test_columns_order() -> None:
    cols = columns(EMOTIONS)
    assert cols[:11] == ["source", "frame", "time_s", "face_id", "x", "y", "w", "h", "det_score", "emotion",
                         "sentiment"]
    assert cols[len(BASE_COLUMNS):] == list(EMOTIONS)
    assert columns(EMOTIONS, landmarks=True)[-1] == "landmarks"


def test_len_iteration_and_rows(res: AnalysisResults) -> None:
    assert len(res) == 5
    rows = list(res)
    assert all(isinstance(r, FaceRow) for r in rows)
    assert [r.source for r in rows] == ["a.jpg"] * 2 + ["b.mp4"] * 3
    r = rows[3]
    assert r.emotion == max(r.probabilities, key=r.probabilities.get)
    assert res[3] == r and res[-1].frame == 2
    with pytest.raises(IndexError):
        res[5]
    assert set(r.as_dict()) == set(columns(EMOTIONS))


def test_sentiment_label_and_score(res: AnalysisResults) -> None:
    p = res.probabilities
    neg = p[:, [EMOTIONS.index(c) for c in ("angry", "disgust", "fear", "sad", "contempt")]].sum(1)
    pos = p[:, EMOTIONS.index("happy")]
    neu = 1 - neg - pos
    np.testing.assert_allclose(res.sentiment_scores, pos - neg, atol=1e-5)
    expect = np.array(["negative", "neutral", "positive"], dtype=object)[np.stack([neg, neu, pos], 1).argmax(1)]
    assert list(res.sentiments) == list(expect)
    debate = AnalysisResults(EMOTIONS, "debate", tables=res.tables)
    pos_d = p[:, [EMOTIONS.index("happy"), EMOTIONS.index("surprise")]].sum(1)
    neg_d = p[:, [EMOTIONS.index(c) for c in ("angry", "disgust", "contempt")]].sum(1)
    np.testing.assert_allclose(debate.sentiment_scores, pos_d - neg_d, atol=1e-5)


def test_to_pandas_and_records(res: AnalysisResults) -> None:
    df = res.to_pandas()
    assert list(df.columns) == columns(EMOTIONS) and len(df) == 5
    assert df["frame"].dtype == np.int64 and df["source"].iloc[-1] == "b.mp4"
    np.testing.assert_allclose(df[list(EMOTIONS)].to_numpy().sum(1), 1.0, atol=1e-5)
    recs = res.to_records()
    assert len(recs) == 5 and recs[0]["emotion"] == df["emotion"].iloc[0]
    assert isinstance(recs[0]["x"], float) and isinstance(recs[0]["frame"], int)


def test_empty_results_have_the_columns() -> None:
    r = AnalysisResults(EMOTIONS)
    df = r.to_pandas()
    assert list(df.columns) == columns(EMOTIONS) and len(df) == 0
    assert len(r) == 0 and list(r) == [] and r.boxes.shape == (0, 4) and len(r.emotions) == 0


def test_status_and_summary(res: AnalysisResults) -> None:
    assert not res.ok and [s.source for s in res.failed] == ["b.mp4"]
    assert res.status("a.jpg").faces == 2
    text = res.summary()
    assert "b.mp4" in text and "stopped at 0.1 s of 1.0 s" in text and "the file ends early" in text
    failed = SourceStatus("/x/y.jpg", "image", "failed", "cannot load image /x/y.jpg: truncated")
    assert failed.describe() == "cannot load image /x/y.jpg: truncated"
    assert SourceStatus("z.jpg", "image", "failed", "not found").describe() == "z.jpg: not found"
    assert "5 faces" in repr(res) and "1 failed" in repr(res)


@pytest.mark.parametrize("ext", ["csv", "jsonl", "json", "parquet", "tsv"])
def test_save_formats_with_landmarks(tmp_path: Path, ext: str) -> None:
    r = AnalysisResults(EMOTIONS, with_landmarks=True)
    r.add(make_table("a.jpg", 3, landmarks=True))
    path = tmp_path / f"out.{ext}"
    r.save(path)
    if ext == "csv":
        df = pd.read_csv(path)
        assert math.isnan(df["landmarks"].iloc[0]) or df["landmarks"].iloc[0] == ""
        pts = np.array(json.loads(df["landmarks"].iloc[1]))
    elif ext == "tsv":
        df = pd.read_csv(path, sep="\t")
        pts = np.array(json.loads(df["landmarks"].iloc[1]))
    elif ext == "jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        df = pd.DataFrame(rows)
        assert rows[0]["landmarks"] is None
        pts = np.array(rows[1]["landmarks"])
    elif ext == "json":
        df = pd.DataFrame(json.loads(path.read_text()))
        pts = np.array(df["landmarks"].iloc[1])
    else:
        df = pd.read_parquet(path)
        assert df["landmarks"].iloc[0] is None
        pts = np.array([list(p) for p in df["landmarks"].iloc[1]])
    assert list(df.columns) == columns(EMOTIONS, landmarks=True)
    assert len(df) == 3 and pts.shape == (468, 2)
    np.testing.assert_allclose(pts, r.landmarks[1], atol=0.01)


def test_save_empty_csv_has_header(tmp_path: Path) -> None:
    r = AnalysisResults(EMOTIONS)
    r.save(tmp_path / "e.csv")
    assert (tmp_path / "e.csv").read_text().strip() == ",".join(columns(EMOTIONS))


def test_landmarks_in_pandas_are_arrays() -> None:
    r = AnalysisResults(EMOTIONS, with_landmarks=True)
    r.add(make_table("a.jpg", 2, landmarks=True))
    df = r.to_pandas()
    assert df["landmarks"].iloc[0] is None and df["landmarks"].iloc[1].shape == (468, 2)
    rows = list(r)
    assert rows[0].landmarks is None and rows[1].landmarks.shape == (468, 2)


def test_face_rows_compare_without_arrays() -> None:
    a = FaceRow("a.jpg", 0, 0.0, 0, (1.0, 2.0, 3.0, 4.0), 0.9, "happy", "positive", 0.8, {"happy": 0.9},
                np.zeros((468, 2), np.float32))
    b = FaceRow("a.jpg", 0, 0.0, 0, (1.0, 2.0, 3.0, 4.0), 0.9, "happy", "positive", 0.8, {"happy": 0.9},
                np.ones((468, 2), np.float32))
    assert a == b and len({a, b}) == 1  # (raised "truth value of an array is ambiguous" before)


def test_non_utf8_file_names_are_written(tmp_path: Path) -> None:
    """A name with bytes that are not UTF-8 (a surrogate in Python) is escaped in every output format."""
    name = os.fsdecode(b"bad\xff\xfe.jpg")
    t = FaceTable(name, np.zeros(1, np.int64), np.zeros(1), np.zeros(1, np.int32), np.ones((1, 4), np.float32),
                  np.ones(1, np.float32), np.full((1, 8), 1 / 8, np.float32), None, np.ones(1, np.float32))
    res = AnalysisResults(EMOTIONS)
    res.add(t)
    for ext in ("csv", "jsonl", "parquet"):
        res.save(tmp_path / f"r.{ext}")
    assert pd.read_parquet(tmp_path / "r.parquet")["source"].iloc[0] == r"bad\xff\xfe.jpg"


def test_printable_names_round_trip(tmp_path) -> None:
    from ferkit.results import printable, unprintable

    raw = os.fsdecode(b"/v/caf\xe9 \xff.mp4")
    assert printable(raw) == r"/v/caf\xe9 \xff.mp4" and unprintable(printable(raw)) == raw
    assert printable("plain é.jpg") == unprintable("plain é.jpg") == "plain é.jpg"
    literal = tmp_path / "back\\xffslash.jpg"  # valid UTF-8 that merely looks escaped: opened as written
    literal.write_bytes(b"x")
    assert unprintable(printable(str(literal))) == str(literal)
