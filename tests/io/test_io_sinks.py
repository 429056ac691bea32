"""Tests of ferkit.io.sinks: formats, rounding, streaming, atomic writes and errors."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ferkit.errors import OutputError
from ferkit.io.sinks import open_sink, sink_format, write_rows

pq = pytest.importorskip("pyarrow.parquet")


def _rows(n: int = 5, start: int = 0) -> list[dict]:
    return [{"source": "clip.mp4", "frame": i, "time_s": i / 23.976, "face_id": i % 2,
             "happy": np.float32(0.123456789), "sad": float("nan"), "ok": i % 2 == 0}
            for i in range(start, start + n)]


def _read(path: Path) -> pd.DataFrame:
    fmt = sink_format(path)
    if fmt == "csv":
        return pd.read_csv(path)
    if fmt == "tsv":
        return pd.read_csv(path, sep="\t")
    if fmt == "jsonl":
        return pd.read_json(path, lines=True)
    if fmt == "json":
        return pd.DataFrame(json.loads(path.read_text()))
    return pd.read_parquet(path)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("ext", ["csv", "tsv", "jsonl", "ndjson", "json", "parquet"])
def test_round_trip(tmp_path: Path, ext: str) -> None:
    path = write_rows(_rows(), tmp_path / f"res.{ext}")
    df = _read(path)
    assert list(df.columns) == ["source", "frame", "time_s", "face_id", "happy", "sad", "ok"]
    assert df["frame"].tolist() == [0, 1, 2, 3, 4]
    assert df["source"].tolist() == ["clip.mp4"] * 5
    assert df["sad"].isna().all()
    assert df["ok"].tolist() == [True, False, True, False, True]
    if ext == "parquet":  # full precision
        assert df["time_s"].tolist() == [i / 23.976 for i in range(5)]
        assert df["happy"].iloc[0] == pytest.approx(0.123456789, abs=1e-7)
    else:  # rounded to 5 decimals
        assert df["happy"].tolist() == pytest.approx([0.12346] * 5, abs=1e-12)  # pandas' JSON parser is loose
        assert df["time_s"].tolist() == pytest.approx([round(i / 23.976, 5) for i in range(5)], abs=1e-12)
        assert "0.12346," in path.read_text() or "0.12346\t" in path.read_text()
    assert _leftovers(tmp_path) == [f"res.{ext}"]


@pytest.mark.parametrize("ext", ["csv", "jsonl", "parquet"])
def test_dataframe_input(tmp_path: Path, ext: str) -> None:
    df = pd.DataFrame(_rows())
    out = _read(write_rows(df, tmp_path / f"df.{ext}"))
    assert out["frame"].tolist() == df["frame"].tolist() and len(out.columns) == len(df.columns)


def test_text_values(tmp_path: Path) -> None:
    rows = [{"a": [0.1234567, 2], "b": None, "c": Path("x/y.jpg"), "d": float("inf"), "e": -1e-9, "f": "é"}]
    line = json.loads(write_rows(rows, tmp_path / "v.jsonl").read_text(encoding="utf-8"))
    assert line == {"a": [0.12346, 2], "b": None, "c": "x/y.jpg", "d": None, "e": 0.0, "f": "é"}
    text = write_rows(rows, tmp_path / "v.csv").read_text(encoding="utf-8").splitlines()
    assert text[1] == '"[0.12346,2]",,x/y.jpg,inf,0.0,é'
    assert write_rows(rows, tmp_path / "raw.jsonl", decimals=None).read_text().startswith('{"a":[0.1234567,2]')


def test_streaming_batches_and_parquet_row_groups(tmp_path: Path) -> None:
    with open_sink(tmp_path / "s.parquet", row_group_size=10) as sink:
        for b in range(5):
            sink.write(_rows(7, start=7 * b))
        assert not (tmp_path / "s.parquet").exists()  # only the hidden temporary file so far
    assert sink.rows_written == 35
    assert pq.ParquetFile(tmp_path / "s.parquet").metadata.num_row_groups >= 3
    assert _read(tmp_path / "s.parquet")["frame"].tolist() == list(range(35))
    with open_sink(tmp_path / "s.csv") as sink:
        sink.write(_rows(3))
        sink.write({"source": "b.jpg", "frame": 9})  # a single row; missing columns stay empty
    df = _read(tmp_path / "s.csv")
    assert df["frame"].tolist() == [0, 1, 2, 9] and math.isnan(df["time_s"].iloc[3])


def test_parquet_later_batch_with_missing_column(tmp_path: Path) -> None:
    with open_sink(tmp_path / "m.parquet", row_group_size=2) as sink:
        sink.write(_rows(2))
        sink.write([{"source": "x", "frame": 5}])
    df = _read(tmp_path / "m.parquet")
    assert df["frame"].tolist() == [0, 1, 5] and pd.isna(df["time_s"].iloc[2])


@pytest.mark.parametrize("ext", ["csv", "jsonl", "json", "parquet"])
def test_failure_keeps_partial_and_never_touches_target(tmp_path: Path, ext: str) -> None:
    target = tmp_path / f"out.{ext}"
    target.write_text("previous results")
    with pytest.raises(RuntimeError, match="boom"), open_sink(target, row_group_size=2) as sink:
        sink.write(_rows(3))
        raise RuntimeError("boom")
    assert target.read_text() == "previous results"
    partial = tmp_path / f"out.{ext}.partial"
    assert sink.partial_path == partial
    assert _read_partial(partial, ext)["frame"].tolist() == [0, 1, 2]  # a valid, readable file
    assert _leftovers(tmp_path) == sorted([target.name, partial.name])


def _read_partial(path: Path, ext: str) -> pd.DataFrame:
    renamed = path.with_name("p." + ext)
    os.replace(path, renamed)
    try:
        return _read(renamed)
    finally:
        os.replace(renamed, path)


def test_failure_without_rows_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyError), open_sink(tmp_path / "x.csv"):
        raise KeyError("early")
    assert _leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="late"), open_sink(tmp_path / "y.csv", keep_partial=False) as s:
        s.write(_rows(2))
        raise ValueError("late")
    assert _leftovers(tmp_path) == []


def test_empty_outputs(tmp_path: Path) -> None:
    assert json.loads(write_rows([], tmp_path / "e.json").read_text()) == []
    assert write_rows([], tmp_path / "e.csv", columns=["a", "b"]).read_text() == "a,b\n"
    assert pq.read_table(write_rows([], tmp_path / "e.parquet", columns=["a"])).column_names == ["a"]


def test_unwritable_paths(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        open_sink(tmp_path / "file.txt" / "out.csv")
    with pytest.raises(OutputError, match="is a folder"):
        open_sink(tmp_path)
    with pytest.raises(OutputError, match="extension"):
        open_sink(tmp_path / "out.xlsx")
    with pytest.raises(OutputError, match="does not exist"):
        open_sink(tmp_path / "new" / "out.csv", make_dirs=False)
    sink = open_sink(tmp_path / "a" / "b" / "out.jsonl")  # missing folders are created
    sink.close()
    assert (tmp_path / "a" / "b" / "out.jsonl").exists()
    if sys.platform.startswith("linux"):
        with pytest.raises(OutputError, match="cannot"):
            open_sink("/proc/ferkit-io-test/out.csv")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_permission_denied(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            open_sink(ro / "out.csv")
    finally:
        ro.chmod(0o700)


def test_csv_new_column_in_later_batch_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="not in the CSV header"), open_sink(tmp_path / "c.csv") as sink:
        sink.write([{"a": 1}])
        sink.write([{"a": 2, "b": 3}])
    assert not (tmp_path / "c.csv").exists()


def test_jsonl_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    with open_sink("-") as sink:
        sink.write(_rows(2))
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["frame"] for x in lines] == [0, 1]
    with pytest.raises(OutputError, match="Parquet"):
        open_sink(sys.stdout, format="parquet")


def test_written_file_has_normal_permissions(tmp_path: Path) -> None:
    path = write_rows(_rows(1), tmp_path / "perm.csv")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_parquet_landmarks_when_the_first_face_has_none(tmp_path: Path) -> None:
    """A first photo without a mesh must not fix the landmarks column to type null for the whole file."""
    from ferkit.labels import FERPLUS_CLASSES
    from ferkit.results import AnalysisResults, FaceTable

    def table(src: str, lm: np.ndarray) -> FaceTable:
        return FaceTable(src, np.zeros(1, np.int64), np.zeros(1), np.zeros(1, np.int32), np.ones((1, 4), np.float32),
                         np.ones(1, np.float32), np.full((1, 8), 1 / 8, np.float32), lm, np.ones(1, np.float32))

    res = AnalysisResults(FERPLUS_CLASSES, with_landmarks=True)
    res.add(table("a.jpg", np.full((1, 468, 2), np.nan, np.float32)))
    res.add(table("b.jpg", np.ones((1, 468, 2), np.float32)))
    res.save(tmp_path / "out.parquet")
    lm = pd.read_parquet(tmp_path / "out.parquet")["landmarks"].tolist()
    assert lm[0] is None and len(lm[1]) == 468


def test_no_unreadable_partial_parquet(tmp_path: Path) -> None:
    """Rows that never reached the file leave no .partial behind (it would have no Parquet footer)."""
    with pytest.raises(KeyboardInterrupt), open_sink(tmp_path / "r.parquet") as s:
        s.write([{"a": 1.0}, {"a": "x"}])  # mixed types: the buffer cannot be written
        raise KeyboardInterrupt
    assert _leftovers(tmp_path) == []


def test_symlink_is_followed_and_special_files_are_written_in_place(tmp_path: Path) -> None:
    target = tmp_path / "target.csv"
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_rows(_rows(3), link)
    assert link.is_symlink() and len(pd.read_csv(target)) == 3  # the link is kept; its file is written
    write_rows(_rows(2), os.devnull, format="csv")  # a device is written in place, never replaced by a file
    assert Path(os.devnull).is_char_device()
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    import threading

    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_rows(_rows(4), fifo)
    reader.join(10)
    assert fifo.is_fifo() and got and got[0].count(b"\n") == 5


def test_parquet_without_rows_has_the_schema_it_was_given(tmp_path: Path) -> None:
    import pyarrow as pa

    from ferkit.labels import EMOTIONS
    from ferkit.results import arrow_schema

    schema = arrow_schema(EMOTIONS)
    with open_sink(tmp_path / "none.parquet", columns=schema.names, schema=schema):
        pass
    with open_sink(tmp_path / "some.parquet", columns=schema.names, schema=schema) as sink:
        sink.write(pd.DataFrame([{"source": "a.jpg", "frame": 0, "time_s": 0.0, "face_id": 0, "emotion": "happy",
                                  "sentiment": "positive", **{c: 0.5 for c in schema.names
                                                              if schema.field(c).type == pa.float32()}}]))
    assert pq.read_schema(tmp_path / "none.parquet") == pq.read_schema(tmp_path / "some.parquet") == schema
    both = pq.read_table(tmp_path, schema=schema)  # a folder of results reads as one table
    assert both.num_rows == 1
