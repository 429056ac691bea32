from __future__ import annotations

import pandas as pd
import pytest

from ferkit.errors import InputError
from ferkit.video import VideoAnalytics, evaluate_verdicts, read_gold


def _summary(make_rows):
    a = make_rows({0: [(f, (100, 100, 80, 80), "happy") for f in range(10)]}, source="/data/a.mp4")
    b = make_rows({0: [(f, (100, 100, 80, 80), "angry") for f in range(10)]}, source="/data/b.mp4")
    return VideoAnalytics.from_frame(pd.concat([a, b]), sources=["/data/a.mp4", "/data/b.mp4", "/data/c.mp4"]
                                     ).summary("video")


def test_evaluate_emotions_with_no_face(tmp_path, make_rows):
    g = tmp_path / "gold.csv"
    g.write_text("video,label\na.mp4,happiness\nb,sad\n/data/c.mp4,neutral\n")
    rep = evaluate_verdicts(_summary(make_rows), read_gold(g))
    assert rep["videos"] == 3 and rep["no_face"] == 1
    assert rep["accuracy"] == pytest.approx(1 / 3) and rep["accuracy_with_face"] == pytest.approx(0.5)
    table = {r["video"]: r for r in rep["per_video"]}
    assert table["/data/c.mp4"]["predicted"] == "no_face" and table["b"]["angry"] == 10
    assert rep["confusion"][rep["labels"].index("sad")][rep["predicted_labels"].index("angry")] == 1


def test_evaluate_sentiment(tmp_path, make_rows):
    g = tmp_path / "gold.csv"
    g.write_text("video,label\na.mp4,positive\nb.mp4,negative\nc.mp4,neutral\n")
    rep = evaluate_verdicts(_summary(make_rows), read_gold(g))
    assert rep["task"] == "sentiment" and rep["accuracy_with_face"] == 1.0


def test_unknown_videos_and_labels_are_listed(tmp_path, make_rows):
    g = tmp_path / "gold.csv"
    g.write_text("video,label\nx.mp4,happy\ny.mp4,sad\na.mp4,happy\n")
    with pytest.raises(InputError, match="x.mp4, y.mp4"):
        evaluate_verdicts(_summary(make_rows), read_gold(g))
    rep = evaluate_verdicts(_summary(make_rows), read_gold(g), missing_as_no_face=True)
    assert rep["no_face"] == 2
    g.write_text("video,label\nx.mp4,joy\ny.mp4,bored\nz.mp4,meh\n")
    with pytest.raises(InputError, match="'bored'.*'meh'"):
        read_gold(g)
    g.write_text("file,emotion\nx,happy\n")
    with pytest.raises(InputError, match="video,label"):
        read_gold(g)
    g.write_text("video,label\nx,happy\ny,positive\n")
    with pytest.raises(InputError, match="mixes"):
        read_gold(g)


def test_gold_files_that_cannot_be_scored_honestly_are_refused(tmp_path, make_rows):
    g = tmp_path / "gold.csv"
    g.write_text("video,label\na.mp4,happy\na.mp4,sad\n")
    with pytest.raises(InputError, match="listed more than once: a.mp4"):
        read_gold(g)
    g.write_text("video,label\na.mp4,contempt\n")  # the 7-class summary below cannot predict contempt
    seven = _summary(make_rows).drop(columns=["share_contempt", "mean_contempt"])
    with pytest.raises(InputError, match="contempt are not among the predicted classes"):
        evaluate_verdicts(seven, read_gold(g))
    a1 = make_rows({0: [(f, (100, 100, 80, 80), "happy") for f in range(5)]}, source="/x/clip.mp4")
    a2 = make_rows({0: [(f, (100, 100, 80, 80), "sad") for f in range(5)]}, source="/y/clip.mp4")
    two = VideoAnalytics.from_frame(pd.concat([a1, a2])).summary("video")
    g.write_text("video,label\nclip.mp4,happy\n")
    with pytest.raises(InputError, match="matches 2 analysed videos"):
        evaluate_verdicts(two, read_gold(g))


def test_failed_video_keeps_its_status(tmp_path, make_rows):
    s = _summary(make_rows)
    s.loc[s["source"] == "/data/c.mp4", "status"] = "failed"
    g = tmp_path / "gold.csv"
    g.write_text("video,label\na.mp4,happy\nc.mp4,sad\n")
    rep = evaluate_verdicts(s, read_gold(g))
    table = {r["video"]: r for r in rep["per_video"]}
    assert table["c.mp4"]["status"] == "failed" and table["c.mp4"]["predicted"] == "no_face"
    assert rep["failed"] == 1 and rep["no_face"] == 0
