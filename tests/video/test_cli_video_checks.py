"""`ferkit report` / `evaluate-videos` / analytics options: exit codes, early refusals, saved tables of any
format, and the Python API's input forms."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ferkit.cli import main


def test_report_exit_codes_follow_analyze(samples, tmp_path, capsys):
    (tmp_path / "bad.mp4").write_bytes(b"not a video" * 100)
    assert main(["report", str(tmp_path / "bad.mp4"), "-o", str(tmp_path / "r.html"), "-q"]) == 2
    assert not (tmp_path / "r.html").exists() and "no report written" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "bad.mp4"), str(samples / "single_face.mp4"), "--fps", "5",
                 "-o", str(tmp_path / "r2.html"), "-q"]) == 1
    index = (tmp_path / "r2.html").read_text()
    assert "failed<br><span class='sub'>cannot open video" in index  # the index says why
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:  # a usage error, before any work
        main(["report", str(samples / "single_face.mp4"), "--fps", "5", "--interval", "0",
              "-o", str(tmp_path / "r3.html"), "-q"])
    assert e.value.code == 2 and "--interval: expected a number > 0" in capsys.readouterr().err


def test_analyze_refuses_bad_summary_before_any_work(samples, tmp_path, capsys):
    assert main(["analyze", str(samples / "single_face.mp4"), "--summary", str(tmp_path / "s.xlsx"), "-q"]) == 2
    assert "cannot tell the output format" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # a usage error, before any work
        main(["analyze", str(samples / "single_face.mp4"), "--summary", str(tmp_path / "s.csv"),
              "--min-quality", "3", "-q"])
    assert e.value.code == 2 and "--min-quality: expected a number in [0, 1]" in capsys.readouterr().err


def test_evaluate_a_parquet_summary_and_quality_filtered_counts(samples, tmp_path, capsys):
    s = tmp_path / "s.parquet"
    rows = tmp_path / "rows.csv"
    assert main(["analyze", str(samples / "single_face.mp4"), "--fps", "10", "--summary", str(s),
                 "-o", str(rows), "-q"]) == 0
    gold = tmp_path / "gold.csv"
    gold.write_text("video,label\nsingle_face.mp4,happy\n")
    capsys.readouterr()
    assert main(["evaluate-videos", str(s), "--labels", str(gold), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["videos"] == 1 and rep["per_video"][0]["frames"] > 0
    # From the rows: the per-class counts are those of the frames the summary keeps
    assert main(["evaluate-videos", str(rows), "--labels", str(gold), "--json", "--min-quality", "1.0"]) == 0
    v = json.loads(capsys.readouterr().out)["per_video"][0]
    assert sum(v[c] for c in ("angry", "happy", "neutral", "sad", "surprise", "fear", "disgust", "contempt")
               ) == v["frames"]


def test_api_accepts_generators_and_arrays_of_paths(samples, tmp_path):
    import ferkit

    paths = [samples / "single_face.jpg", samples / "multi_face.jpg"]
    with ferkit.Analyzer() as az:
        a = az.analyze(p for p in paths)
        b = az.analyze(np.array([str(p) for p in paths]))
        c = az.analyze(pd.Series([str(p) for p in paths]))
    assert [s.status for s in a.statuses] == [s.status for s in b.statuses] == [s.status for s in c.statuses]
    assert len(a) == len(b) == len(c) == 6


def test_results_report_options(samples, tmp_path):
    import ferkit

    res = ferkit.analyze(samples / "single_face.mp4", fps=5)
    pages = res.report(tmp_path / "r.html", thumbnails=False, title="My clip", smooth_s=0.5)
    text = pages[0].read_text()
    assert "My clip" in text and "smooth_s" in text


def test_empty_results_have_the_same_summary_columns(samples):
    import ferkit

    empty = ferkit.analyze([]).summary(by="video")
    full = ferkit.analyze(samples / "single_face.mp4", fps=2).summary(by="video")
    assert list(empty.columns) == list(full.columns) and len(empty) == 0


def test_report_from_rows_written_elsewhere_finds_its_videos(samples, tmp_path, capsys, monkeypatch):
    import shutil

    shutil.copyfile(samples / "single_face.mp4", tmp_path / "clip.mp4")
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "clip.mp4", "--fps", "5", "-o", "rows.csv", "-q", "--workers", "1"]) == 0
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # the rows name clip.mp4 relative to their own folder
    assert main(["report", "../rows.csv", "-o", "rep/index.html", "-q"]) == 0
    pages = "".join(p.read_text() for p in (tmp_path / "sub" / "rep").glob("*.html"))
    assert "could not be re-read" not in pages and "peak moments" in pages
    (tmp_path / "clip.mp4").unlink()
    capsys.readouterr()
    assert main(["report", "../rows.csv", "-o", "rep2/index.html"]) == 0
    assert "no thumbnails for 1 source not found as files: clip.mp4" in capsys.readouterr().err
