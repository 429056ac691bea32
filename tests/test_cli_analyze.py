"""``ferkit analyze``: output formats, summary, annotation, exit codes and error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ferkit.cli import main
from ferkit.labels import EMOTIONS
from ferkit.results import columns

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "data" / "samples"
COLS = columns(EMOTIONS)


@pytest.fixture(scope="module")
def samples() -> Path:
    if not (SAMPLES / "multi_face.jpg").is_file():
        pytest.skip(f"sample media not found at {SAMPLES}")
    return SAMPLES


def run(*argv: object) -> int:
    return main(["analyze", *map(str, argv), "--workers", "1"])


def test_summary_on_stdout(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(samples / "multi_face.jpg", samples / "single_face.mp4") == 0
    out = capsys.readouterr().out
    assert "multi_face.jpg: 5 faces" in out and out.count("  face ") == 5 and "happy" in out
    assert "single_face.mp4: 72 faces in 72 of 72 frames" in out and "emotions: happy" in out


def test_csv_output(samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "rows.csv"
    assert run(samples / "multi_face.jpg", samples / "single_face.jpg", "-o", out) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == COLS and len(df) == 6
    assert df["face_id"].tolist()[:5] == [0, 1, 2, 3, 4] and (df["frame"] == 0).all()
    np.testing.assert_allclose(df[list(EMOTIONS)].sum(axis=1), 1, atol=1e-3)
    assert set(df["sentiment"]) <= {"negative", "neutral", "positive"}
    assert capsys.readouterr().out == ""  # the rows went to the file, nothing on stdout


def test_jsonl_to_stdout_in_a_fresh_process(samples: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "ferkit", "analyze", str(samples / "multi_face.jpg"), "--format",
                        "jsonl", "--workers", "1"], capture_output=True, text=True,
                       env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}, check=False)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(rows) == 5 and list(rows[0]) == COLS and p.stderr == ""


def test_parquet_with_landmarks_and_video_sampling(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.parquet"
    assert run(samples / "single_face.mp4", "--every", "10", "--landmarks", "-o", out, "-q") == 0
    df = pd.read_parquet(out)
    assert list(df.columns) == columns(EMOTIONS, landmarks=True)
    assert df["frame"].tolist() == list(range(0, 72, 10))
    np.testing.assert_allclose(df["time_s"], df["frame"] / 30, atol=1e-3)
    pts = np.array([list(p) for p in df["landmarks"].iloc[0]])
    assert pts.shape == (468, 2)


def test_csv_landmarks_are_json(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    assert run(samples / "single_face.jpg", "--landmarks", "-o", out, "-q") == 0
    pts = np.array(json.loads(pd.read_csv(out)["landmarks"].iloc[0]))
    assert pts.shape == (468, 2)


def test_annotate(samples: Path, tmp_path: Path) -> None:
    import cv2

    ann = tmp_path / "ann"
    assert run(samples / "multi_face.jpg", samples / "single_face.mp4", "--fps", "10", "--annotate", ann, "-q",
               "-o", tmp_path / "r.jsonl") == 0
    img = cv2.imread(str(ann / "multi_face.jpg"))
    assert img is not None and img.shape == (667, 1000, 3)
    cap = cv2.VideoCapture(str(ann / "single_face.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 24 and cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 640
    import av

    with av.open(str(ann / "single_face.mp4")) as c:  # the source's sound is copied, as long as the frames last
        v, a = c.streams.video[0], c.streams.audio[0]
        assert abs(float(a.duration * a.time_base) - float(v.duration * v.time_base)) < 0.15


def test_annotate_keeps_every_name(samples: Path, tmp_path: Path) -> None:
    """Same file names in different folders, or with different extensions, get distinct annotated files."""
    import shutil

    import cv2

    coll = tmp_path / "coll"
    for rel in ("a/x.jpg", "b/x.jpg", "x.jpg"):
        (coll / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(samples / "single_face.jpg", coll / rel)
    cv2.imwrite(str(coll / "x.png"), cv2.imread(str(samples / "single_face.jpg")))
    ann = tmp_path / "ann"
    assert run(coll, "--annotate", ann, "-q", "-o", tmp_path / "r.csv") == 0
    written = sorted(str(p.relative_to(ann)) for p in ann.rglob("*.jpg"))
    assert written == ["a/x.jpg", "b/x.jpg", "x.jpg", "x_png.jpg"]


def test_no_detect_and_options(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert run(samples / "multi_face.jpg", "--no-detect", "-o", out, "-q") == 0
    df = pd.read_csv(out)
    assert len(df) == 1 and (df["w"].iloc[0], df["h"].iloc[0]) == (1000, 667)
    assert run(samples / "multi_face.jpg", "--max-faces", "2", "--sentiment-map", "debate", "-o", out, "-q") == 0
    assert len(pd.read_csv(out)) == 2
    assert run(samples / "multi_face.jpg", "--min-face-size", "100", "-o", out, "-q") == 0
    assert len(pd.read_csv(out)) == 4  # one face is 89 px
    assert run(samples / "multi_face.jpg", "--detector", "mtcnn", "-o", out, "-q") == 0
    assert len(pd.read_csv(out)) == 5


# ------------------------------------------------------------------------------------------------ errors
def test_missing_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path / "nope.jpg") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ferkit: error: {tmp_path / 'nope.jpg'}: not found"]


def test_partial_failure_exit_1_keeps_the_good_rows(samples: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jpg").write_bytes((samples / "single_face.jpg").read_bytes())
    (folder / "zero.jpg").touch()
    (folder / "bad.png").write_bytes(b"nope" * 10)
    out = tmp_path / "rows.csv"
    assert run(folder, "-o", out) == 1
    assert len(pd.read_csv(out)) == 1
    err = capsys.readouterr().err
    assert "zero.jpg is empty (0 bytes)" in err and "bad.png" in err and "2 of 3 inputs failed" in err
    assert all(line.startswith("ferkit: ") for line in err.strip().splitlines())


def test_truncated_video_exit_1(samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = (samples / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.3)])
    out = tmp_path / "rows.jsonl"
    assert run(cut, "--every", "6", "-o", out) == 1
    rows = out.read_text().splitlines()
    assert len(rows) > 5
    err = capsys.readouterr().err
    assert "stopped at" in err and "ends early" in err


def test_total_failure_exit_2_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.jpg").touch()
    (tmp_path / "b.mp4").write_bytes(b"garbage")
    out = tmp_path / "rows.csv"
    assert run(tmp_path / "a.jpg", tmp_path / "b.mp4", "-o", out) == 2
    assert not out.exists() and not list(tmp_path.glob(".rows.csv*"))
    assert "none of the 2 inputs could be analysed" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["/proc/ferkit-nope/rows.csv", "{tmp}/rows.xyz", "{tmp}"])
def test_unwritable_output_fails_before_any_work(samples: Path, tmp_path: Path, target: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert run(samples / "single_face.jpg", "-o", target.format(tmp=tmp_path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ferkit: error: cannot")


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--every", "0"], ["--fps", "-1"], ["--every", "2", "--fps", "3"], ["--score-threshold", "2"]):
        with pytest.raises(SystemExit) as e:
            main(["analyze", "x.jpg", *argv])
        assert e.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err
    assert main(["analyze", "x.jpg", "--format", "parquet"]) == 2
    assert "Parquet cannot go to standard output" in capsys.readouterr().err


def test_names_that_are_not_utf8(samples: Path, tmp_path: Path) -> None:
    """Annotated copies, summaries and reports of files whose names are not UTF-8 (no crash, no traceback)."""
    import shutil

    folder = tmp_path / "in"
    folder.mkdir()
    photo = os.path.join(os.fsencode(folder), b"caf\xe9.jpg")
    video = os.path.join(os.fsencode(folder), b"v\xff.mp4")
    shutil.copyfile(samples / "single_face.jpg", photo)
    shutil.copyfile(samples / "single_face.mp4", video)
    ann = tmp_path / "ann"
    assert run(folder, "--annotate", ann, "--fps", "5", "-q", "-o", tmp_path / "r.csv") == 0
    assert len(list(ann.iterdir())) == 2
    assert run(os.fsdecode(video), "--fps", "5", "--summary", tmp_path / "s.csv", "--report", tmp_path / "r.html",
               "-q") == 0
    s = pd.read_csv(tmp_path / "s.csv")
    assert s["source"].iloc[0].endswith(r"v\xff.mp4") and s["status"].iloc[0] == "ok"
    assert "could not be re-read" not in (tmp_path / "r.html").read_text()


def test_outputs_never_replace_inputs(samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """-o / --summary naming an input, or --annotate into the inputs' own folder, must not overwrite them."""
    import shutil

    photo = tmp_path / "p.jpg"
    shutil.copyfile(samples / "single_face.jpg", photo)
    before = photo.read_bytes()
    assert run(photo, "-o", photo, "--format", "csv") == 2
    assert "is one of the inputs" in capsys.readouterr().err and photo.read_bytes() == before
    assert run(photo, "-o", tmp_path / "s.csv", "--summary", tmp_path / "s.csv") == 2
    assert "are the same file" in capsys.readouterr().err
    shutil.copyfile(samples / "single_face.mp4", tmp_path / "v.mp4")
    video_before = (tmp_path / "v.mp4").read_bytes()
    assert run(tmp_path, "--annotate", tmp_path, "--fps", "2", "-q", "-o", tmp_path / "r.csv") == 0
    assert photo.read_bytes() == before and (tmp_path / "v.mp4").read_bytes() == video_before
    assert (tmp_path / "p_jpg.jpg").is_file() and (tmp_path / "v_mp4.mp4").is_file()


def test_empty_path_is_an_error_not_the_current_folder(samples: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    shutil.copyfile(samples / "single_face.jpg", tmp_path / "p.jpg")
    monkeypatch.chdir(tmp_path)  # "" must not mean "."
    assert run("", "-o", "r.csv") == 2
    assert "'': is an empty path" in capsys.readouterr().err and not (tmp_path / "r.csv").exists()


def test_list_file_errors_name_the_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "list.txt").write_text("nope.jpg\n")
    assert run(tmp_path / "list.txt") == 2
    assert f"(listed in {tmp_path / 'list.txt'}): not found" in capsys.readouterr().err


def test_video_option_values_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--track", "--max-missed", "-1"], ["--smooth", "nan"], ["--min-quality", "2"],
                 ["--interval", "0"]):
        with pytest.raises(SystemExit) as e:
            main(["analyze", "x.mp4", *argv])
        assert e.value.code == 2


def test_unwritable_report_folder_fails_before_any_work(samples: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import tempfile

    try:  # /sys refuses new files even to root (os.access would say yes to root)
        tempfile.TemporaryFile(dir="/sys").close()
        pytest.skip("/sys is writable here")
    except OSError:
        pass
    assert run(samples / "single_face.mp4", "--report", "/sys/r.html") == 2
    assert "is not writable" in capsys.readouterr().err


def test_rows_piped_into_a_reader_that_stops(samples: Path) -> None:
    """`ferkit analyze video --format jsonl | head -1`: a quiet end (status 141), no error message.

    The reader here (`true`) has gone before the first row is written, so the pipe is broken for certain."""
    cmd = (f"{sys.executable} -m ferkit analyze {samples / 'single_face.mp4'} --format jsonl --workers 1 "
           "| true; echo \"rc=${PIPESTATUS[0]}\"")
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "rc=141", out.stdout
    assert "error" not in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_sigterm_keeps_and_names_the_partial_outputs(samples: Path, tmp_path: Path) -> None:
    """`timeout`/`kill` mid-video: rows kept as rows.csv.partial (named on stderr), the annotated video as
    <name>.partial.mp4 (playable), nothing cut under a final name; exit status 143."""
    import signal
    import time

    cmd = [sys.executable, "-m", "ferkit", "analyze", str(samples / "WolfgangLanger_Pexels.mp4"), "--workers", "1",
           "-o", str(tmp_path / "rows.csv"), "--annotate", str(tmp_path / "ann")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # wait until rows are being written
        if any(p.stat().st_size > 0 for p in tmp_path.glob(".rows.csv.*.tmp")):
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the analysis ended before it could be stopped")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated" in err and f"kept in {tmp_path / 'rows.csv.partial'}" in err
    assert not (tmp_path / "rows.csv").exists() and len(pd.read_csv(tmp_path / "rows.csv.partial")) > 0
    assert not (tmp_path / "ann" / "WolfgangLanger_Pexels.mp4").exists()
    import cv2

    cap = cv2.VideoCapture(str(tmp_path / "ann" / "WolfgangLanger_Pexels.partial.mp4"))
    assert cap.read()[0]


def test_damaged_stretch_in_a_video_is_reported(samples: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Garbage in the middle of a video: the frames that cannot be decoded are counted and named (exit 1);
    the rest is analysed."""
    data = bytearray((samples / "WolfgangLanger_Pexels.mp4").read_bytes())
    rng = np.random.default_rng(0)  # garbage over 200 places in the middle of the file
    for off in rng.integers(int(len(data) * 0.45), int(len(data) * 0.6), 200):
        data[off:off + 50] = rng.integers(0, 256, 50, dtype=np.uint8).tobytes()
    bad = tmp_path / "damaged.mp4"
    bad.write_bytes(data)
    from ferkit.io import iter_frames

    stream = iter_frames(bad)
    n = sum(1 for _ in stream)
    assert stream.complete and stream.frames_lost == stream.decode_errors > 0
    first = iter_frames(bad, end=8.0)  # the damage is later: a range before it counts none
    assert sum(1 for _ in first) > 0 and first.frames_lost == 0
    out = tmp_path / "rows.csv"
    assert run(bad, "-o", out) == 1
    err = capsys.readouterr().err
    assert f"{stream.frames_lost} damaged frames could not be decoded" in err
    assert len(pd.read_csv(out)) == n  # one face per analysed frame


def test_more_outputs_that_must_not_replace_inputs(samples: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    photo = tmp_path / "p.jpg"
    shutil.copyfile(samples / "single_face.jpg", photo)
    listing = tmp_path / "list.csv"
    listing.write_text(f"{photo}\n")
    assert run(tmp_path, "-o", photo, "--format", "csv") == 2  # a photo found in an input folder
    assert "is one of the inputs" in capsys.readouterr().err
    assert run(f"@{listing}", "-o", listing) == 2  # the list file is an input too
    assert "is one of the inputs" in capsys.readouterr().err and listing.read_text() == f"{photo}\n"
    assert main(["report", str(photo), "-o", str(tmp_path / "r.html"), "--summary", str(photo)]) == 2
    assert "is one of the inputs" in capsys.readouterr().err
    # names that look like a parent folder, and inputs reached through a link, keep their files
    odd = tmp_path / "..odd.jpg"
    shutil.copyfile(samples / "single_face.jpg", odd)
    (tmp_path / "link.jpg").symlink_to(photo)
    before = odd.read_bytes()
    assert run(odd, tmp_path / "link.jpg", "--annotate", tmp_path, "-q", "-o", tmp_path / "r.csv") == 0
    assert odd.read_bytes() == before and (tmp_path / "link.jpg").is_symlink()


def test_dev_stdout_redirected_to_a_file_appends(samples: Path, tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("earlier line\n")
    cmd = (f"{sys.executable} -m ferkit analyze {samples / 'single_face.jpg'} -o /dev/stdout --format csv -q "
           f"--workers 1 >> {log}")
    subprocess.run(["bash", "-c", cmd], check=True, timeout=120)
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier line" and lines[1].startswith("source,frame") and len(lines) == 3
