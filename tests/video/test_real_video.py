"""Tracking, reports and the CLI on the sample videos (sparse sampling to stay fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ferkit.video import Tracker, VideoAnalytics, track_rows

VIDEOS = ("WolfgangLanger_Pexels.mp4", "face_noface.mov", "noface_face.mov", "no_face.mp4")


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    from pathlib import Path

    samples = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "samples"
    if not samples.is_dir():
        pytest.skip("sample data not found")
    from ferkit.pipeline import Analyzer

    with Analyzer(workers=1, every=4, tracker=Tracker()) as az:
        res = az.analyze([str(samples / v) for v in VIDEOS])
    return res


def test_one_person_one_id(analysed):
    df = analysed.to_pandas()
    for src, g in df.groupby("source"):
        assert g["face_id"].nunique() == 1, src
    assert set(df["source"].map(lambda s: s.rsplit("/", 1)[-1])) == set(VIDEOS[:3])


def test_retracking_real_rows_with_missed_detections(analysed):
    df = analysed.to_pandas()
    rng = np.random.default_rng(1)
    kept = df[rng.random(len(df)) > 0.3].reset_index(drop=True)
    out = track_rows(kept, max_missed=5)
    assert (out.groupby("source")["face_id"].nunique() == 1).all()


def test_analytics_and_report(analysed, tmp_path):
    va = VideoAnalytics.from_results(analysed, smooth_s=0.3)
    v = va.summary("video")
    assert len(v) == 4
    nf = v[v["source"].str.endswith("no_face.mp4")].iloc[0]
    assert nf["status"] == "no_face" and nf["rows"] == 0 and nf["tracks"] == 0
    wl = v[v["source"].str.endswith("Pexels.mp4")].iloc[0]
    assert wl["verdict"] in ("happy", "sad") and wl["rows"] > 50
    pages = va.report(tmp_path / "index.html")
    assert len(pages) == 5 and all(p.is_file() for p in pages)
    index = pages[0].read_text()
    for name in VIDEOS:
        assert name in index
    wl_page = next(p for p in pages if "Pexels" in p.name).read_text()
    assert wl_page.count("data:image/png;base64,") == 4 and "Settings used" in wl_page
    nf_page = next(p for p in pages if p.name.endswith("_no_face.html")).read_text()
    assert "no face was found" in nf_page and "data:image" not in nf_page


def test_cli_report_and_evaluate_from_rows(analysed, tmp_path, capsys):
    from ferkit.cli import main

    rows = tmp_path / "rows.csv"
    analysed.save(rows)
    out = tmp_path / "r" / "report.html"
    summ = tmp_path / "summary.csv"
    assert main(["report", str(rows), "-o", str(out), "--summary", str(summ), "--no-thumbnails", "-q"]) == 0
    s = pd.read_csv(summ)
    assert set(s["level"]) == {"video", "track"} and (s["level"] == "video").sum() == 3
    gold = tmp_path / "gold.csv"
    gold.write_text("video,label\nWolfgangLanger_Pexels.mp4,happy\nface_noface.mov,happy\nnoface_face.mov,happy\n")
    assert main(["evaluate-videos", str(summ), "--labels", str(gold), "--json"]) == 0
    import json

    rep = json.loads(capsys.readouterr().out)
    assert rep["videos"] == 3 and len(rep["per_video"]) == 3
    gold.write_text("video,label\nmissing.mp4,happy\n")
    assert main(["evaluate-videos", str(summ), "--labels", str(gold)]) == 2
    assert "missing.mp4" in capsys.readouterr().err


def test_results_hooks(analysed):
    t = analysed.tracks(smooth_s=0.2)
    assert {"quality", "low_quality"} <= set(t.columns) and len(t) == len(analysed)
    v = analysed.summary(by="video")
    assert len(v) == 4 and "verdict" in v.columns
    assert isinstance(analysed.summary(), str)


def test_cli_analyze_track_summary_report(samples, tmp_path):
    from ferkit.cli import main

    s, r = tmp_path / "s.csv", tmp_path / "r.html"
    rc = main(["analyze", str(samples / "face_noface.mov"), str(samples / "no_face.mp4"), "--every", "8",
               "--track", "--summary", str(s), "--report", str(r), "-q", "--workers", "1"])
    assert rc == 0
    df = pd.read_csv(s)
    assert list(df.loc[df["level"] == "video", "status"]) == ["ok", "no_face"]
    assert r.is_file() and (tmp_path / "r_no_face.html").is_file()
