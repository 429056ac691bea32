"""Batch jobs: results, status table, resuming, idempotence, changed inputs, exit codes, SIGKILL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ferkit.batch import Archive, read_archive, run_batch
from ferkit.results import BASE_COLUMNS

from .conftest import make_inputs

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_first_run_rows_and_status(local_job):
    inputs, out, s = local_job
    assert (s.total, s.ok, s.no_face, s.failed, s.analysed, s.skipped) == (6, 3, 1, 2, 6, 0)
    assert "2 failed" in s.describe().replace("; ", " ") or "failed" in s.describe()
    st = pd.read_csv(out / "status.csv").set_index("source")
    assert st.loc[str(inputs / "multi_face.jpg"), "faces"] == 5
    assert st.loc[str(inputs / "free-mountain-vector-01.jpg"), "status"] == "no_face"
    assert st.loc[str(inputs / "bad.jpg"), "status"] == "failed"
    assert "trunc.jpg" in st.loc[str(inputs / "trunc.jpg"), "reason"]
    assert (st["seconds"] >= 0).all()
    df = read_archive(out)
    assert list(df.columns[:len(BASE_COLUMNS)]) == list(BASE_COLUMNS)
    assert "happy" in df.columns and "contempt" in df.columns
    assert len(df) == s.rows == 7
    assert not df.duplicated(["source", "frame", "face_id"]).any()
    assert len(list((out / "parts").iterdir())) == 3  # one part per input with faces


def test_rerun_is_idempotent(local_job):
    inputs, out, _ = local_job
    before = (out / "parts").iterdir()
    names = sorted(p.name for p in before)
    s = run_batch([inputs], out, workers=2)
    assert (s.analysed, s.skipped, s.failed) == (0, 6, 2)
    assert sorted(p.name for p in (out / "parts").iterdir()) == names
    assert len(read_archive(out)) == 7


def test_changed_input_redone_and_superseded(samples, tmp_path):
    inputs = make_inputs(samples, tmp_path / "in")
    out = tmp_path / "out"
    run_batch([inputs], out, workers=1)
    target = inputs / "single_face.jpg"
    shutil.copyfile(samples / "multi_face.jpg", target)  # now 5 faces
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    s = run_batch([inputs], out, workers=1)
    assert s.analysed == 1 and s.skipped == 5
    df = read_archive(out)
    assert (df["source"] == str(target)).sum() == 5
    assert len(list((out / "parts").iterdir())) == 3  # the old part was deleted
    s = run_batch([inputs], out, workers=1, retry_failed=True)
    assert s.analysed == 2 and s.failed == 2  # only the failed ones are redone


def test_cli_exit_codes(samples, tmp_path, capsys):
    from ferkit.cli import main

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_text("nope")
    assert main(["batch", str(bad), "-o", str(tmp_path / "o1"), "-q", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "1 failed" in err and "not an image" in err
    assert main(["batch", str(samples / "single_face.jpg"), str(bad / "x.jpg"), "-o", str(tmp_path / "o2"),
                 "--workers", "1", "-q"]) == 1
    assert main(["batch", str(samples / "single_face.jpg"), "-o", str(tmp_path / "o2"), "-q"]) == 0
    # A video that ends early keeps its rows: "some failed" (1), not "nothing analysed" (2)
    data = (samples / "WolfgangLanger_Pexels.mp4").read_bytes()  # 'moov' first: the cut file stays decodable
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.2)])
    assert main(["batch", str(tmp_path / "cut.mp4"), "-o", str(tmp_path / "o3"), "-q", "--workers", "1",
                 "--every", "8"]) == 1
    assert "1 failed (1 in part)" in capsys.readouterr().err


def test_second_run_on_locked_folder_refused(tmp_path):
    from ferkit.errors import OutputError

    with Archive(tmp_path / "job"), pytest.raises(OutputError, match="another batch run"):
        run_batch([str(tmp_path)], tmp_path / "job")


def test_sigkill_then_resume(samples, tmp_path):
    """Kill the whole job (driver and workers) mid-way with SIGKILL; the re-run does only the rest."""
    inputs = make_inputs(samples, tmp_path / "in", copies=4)  # 18 inputs
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "ferkit", "batch", str(inputs), "-o", str(out), "--workers", "1", "-q"]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    log = out / "status.jsonl"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if log.is_file() and log.read_bytes().count(b"\n") >= 4:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    done_before = Archive(out, create=False).records()
    assert 4 <= len(done_before) < 18
    s = run_batch([inputs], out, workers=1)
    assert s.skipped == len(done_before) and s.analysed == 18 - len(done_before)
    after = Archive(out, create=False).records()
    assert len(after) == 18
    for src, rec in done_before.items():  # finished files were not redone
        assert after[src].finished_at == rec.finished_at
    df = read_archive(out)
    assert not df.duplicated(["source", "frame", "face_id"]).any()
    assert len(df) == 4 * 7
    referenced = {r.part for r in after.values() if r.part}
    assert {p.name for p in (out / "parts").iterdir()} == referenced  # no orphan or temporary file left


def test_a_dead_worker_does_not_end_the_batch(samples, tmp_path):
    """SIGKILL one worker process mid-run (as the out-of-memory killer would): its files are requeued."""
    import multiprocessing as mp
    import threading

    inputs = make_inputs(samples, tmp_path / "in", copies=4)  # 18 inputs
    out = tmp_path / "out"
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["summary"] = run_batch([inputs], out, workers=2)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            result["error"] = exc

    th = threading.Thread(target=run)
    th.start()
    log = out / "status.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (log.is_file() and log.read_bytes().count(b"\n") >= 2):
        time.sleep(0.05)
    victims = [p for p in mp.active_children() if p.is_alive()]
    assert victims, "no worker process to kill"
    os.kill(victims[0].pid, signal.SIGKILL)
    th.join(timeout=240)
    assert "error" not in result, result.get("error")
    s = result["summary"]
    assert s.total == 18 and s.ok + s.no_face + s.failed == 18 and s.ok >= 12


def test_workers_end_when_the_driver_is_killed(samples, tmp_path):
    inputs = make_inputs(samples, tmp_path / "in", copies=4)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "ferkit", "batch", str(inputs), "-o", str(tmp_path / "out"), "--workers", "2", "-q"]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    log = tmp_path / "out" / "status.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (log.is_file() and log.read_bytes().count(b"\n") >= 1):
        time.sleep(0.05)
    children = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    assert children
    proc.kill()  # the driver only
    proc.wait(timeout=20)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{c}").exists() and
                                              "zombie" not in _proc_state(c) for c in children):
        time.sleep(0.2)
    alive = [c for c in children if Path(f"/proc/{c}").exists() and "zombie" not in _proc_state(c)]
    for c in alive:
        os.kill(c, signal.SIGKILL)
    assert not alive, "worker processes outlived the killed batch driver"


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


def test_new_weights_in_the_same_model_file_redo_the_inputs(samples, tmp_path):
    from ferkit.inference.model import WEIGHTS_DIR

    model = tmp_path / "m" / "x.onnx"
    model.parent.mkdir()
    for ext in (".onnx", ".json"):
        shutil.copyfile(WEIGHTS_DIR / f"default{ext}", model.with_suffix(ext))
    photo = tmp_path / "in" / "single_face.jpg"
    photo.parent.mkdir()
    shutil.copyfile(samples / "single_face.jpg", photo)
    opts = {"model": str(model)}
    assert run_batch([photo], tmp_path / "out", options=opts, workers=1).analysed == 1
    assert run_batch([photo], tmp_path / "out", options=opts, workers=1).analysed == 0
    for ext in (".onnx", ".json"):  # other weights under the same name
        shutil.copyfile(WEIGHTS_DIR / f"fer2013{ext}", model.with_suffix(ext))
    assert run_batch([photo], tmp_path / "out", options=opts, workers=1).analysed == 1


def test_long_file_names_are_written_atomically(tmp_path):
    from ferkit.batch.archive import atomic_write_bytes

    target = tmp_path / ("x" * 250)
    atomic_write_bytes(target, b"ok")
    assert target.read_bytes() == b"ok" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_symlinked_folder_is_the_same_inputs_and_deleted_inputs_can_be_pruned(samples, tmp_path, capsys):
    from ferkit.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("single_face.jpg", "multi_face.jpg"):
        shutil.copyfile(samples / name, folder / name)
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(samples / "single_face.jpg", other / "kept.jpg")
    out = tmp_path / "out"
    run_batch([folder, other], out, workers=1)
    link = tmp_path / "link"
    link.symlink_to(folder, target_is_directory=True)
    s = run_batch([link], out, workers=1)
    assert (s.analysed, s.skipped) == (0, 2)  # reached through a link: the same files, not new inputs
    parts = {p.name for p in (out / "parts").iterdir()}
    assert len(parts) == 3
    (folder / "multi_face.jpg").unlink()
    s = run_batch([folder], out, workers=1)  # without pruning, the archive keeps what it had
    assert s.pruned == 0 and set(read_archive(out)["source"]) == {
        str(folder / "single_face.jpg"), str(folder / "multi_face.jpg"), str(other / "kept.jpg")}
    capsys.readouterr()
    assert main(["batch", str(folder), "-o", str(out), "--workers", "1", "--prune-missing"]) == 0
    assert "dropped the results of 1 deleted input" in capsys.readouterr().err
    assert set(read_archive(out)["source"]) == {str(folder / "single_face.jpg"), str(other / "kept.jpg")}
    assert len(list((out / "parts").iterdir())) == 2  # the deleted input's part is gone too
    status = pd.read_csv(out / "status.csv")
    assert str(folder / "multi_face.jpg") not in set(status["source"])
    shutil.rmtree(other)  # a folder missing as a whole (an unmounted drive looks the same): its results stay
    s = run_batch([folder], out, workers=1, prune_missing=True)
    assert s.pruned == 0 and str(other / "kept.jpg") in set(read_archive(out)["source"])


def test_ctrl_c_to_the_whole_group_stops_cleanly_and_leaves_a_status_table(samples, tmp_path):
    """SIGINT to driver and workers alike (a terminal's Ctrl-C): a quiet stop with status 130, no worker
    traceback, no hang, and status.csv lists what was finished."""
    inputs = make_inputs(samples, tmp_path / "in", copies=12)  # 56 inputs: still running when interrupted
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "ferkit", "batch", str(inputs), "-o", str(out), "--workers", "2", "-q"]
    # (a test run started in the background inherits SIGINT ignored; a terminal's job does not)
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = out / "status.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and log.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the job finished before it could be interrupted")
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the interrupted batch hung")
    assert proc.returncode == 130 and err.strip() == "ferkit: interrupted", err
    table = pd.read_csv(out / "status.csv")
    assert len(table) == len(Archive(out, create=False).records()) >= 2


def test_named_inputs_that_go_missing_keep_their_results(samples, tmp_path, capsys):
    """Files named directly or in a list (e.g. on a drive that is not mounted now) keep their results until a
    --prune-missing run finds their folder without them."""
    from ferkit.cli import main

    drive = tmp_path / "drive"
    drive.mkdir()
    shutil.copyfile(samples / "single_face.jpg", drive / "a.jpg")
    shutil.copyfile(samples / "multi_face.jpg", drive / "b.jpg")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{drive / 'a.jpg'}\n{drive / 'b.jpg'}\n")
    out = tmp_path / "out"
    assert main(["batch", f"@{listing}", "-o", str(out), "--workers", "1", "-q"]) == 0
    rows = len(read_archive(out))
    drive.rename(tmp_path / "unmounted")
    capsys.readouterr()
    assert main(["batch", f"@{listing}", "-o", str(out), "--workers", "1", "-q", "--prune-missing"]) == 1
    assert "2 inputs not found now: their earlier results are kept" in capsys.readouterr().err
    assert len(read_archive(out)) == rows and len(list((out / "parts").iterdir())) == 2
    drive.mkdir()  # the folder is back, without the files: deleted, so pruned
    s = run_batch([f"@{listing}"], out, workers=1, prune_missing=True)
    assert s.pruned == 2 and not list((out / "parts").iterdir())


@pytest.mark.parametrize("argv", [["--model", "nosuch"], ["--detector", "nosuch"],
                                  ["--engine", "dask", "--scheduler", "garbage"]])
def test_bad_model_detector_or_scheduler_stop_before_any_input(samples, tmp_path, capsys, argv):
    from ferkit.cli import main

    if "dask" in argv:
        pytest.importorskip("dask.distributed")
    out = tmp_path / "out"
    assert main(["batch", str(samples / "single_face.jpg"), "-o", str(out), "-q", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ferkit: error:"), err
    assert not out.exists()  # nothing recorded: the inputs did not fail, the settings did


def test_no_usable_input_makes_no_results_folder(tmp_path, capsys):
    from ferkit.cli import main

    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "nope"), str(tmp_path / "empty"), "-o", str(out), "-q"]) == 2
    assert "nothing to analyse (no results folder made)" in capsys.readouterr().err and not out.exists()


def test_damaged_video_and_empty_list(samples, tmp_path, capsys):
    """A video with damaged frames is analysed, recorded with frames_lost and exits 1; an empty list file makes
    no results folder."""
    import numpy as np

    from ferkit.cli import main

    data = bytearray((samples / "WolfgangLanger_Pexels.mp4").read_bytes())
    rng = np.random.default_rng(0)
    for off in rng.integers(int(len(data) * 0.45), int(len(data) * 0.6), 200):
        data[off:off + 50] = rng.integers(0, 256, 50, dtype=np.uint8).tobytes()
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "damaged.mp4").write_bytes(data)
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "v"), "-o", str(out), "-q", "--workers", "1", "--every", "4"]) == 1
    assert "1 video analysed with damaged frames skipped" in capsys.readouterr().err
    table = pd.read_csv(out / "status.csv")
    assert table["status"].tolist() == ["ok"] and table["frames_lost"].iloc[0] > 0
    (tmp_path / "empty.txt").write_text("# nothing\n")
    assert main(["batch", f"@{tmp_path / 'empty.txt'}", "-o", str(tmp_path / "o2"), "-q"]) == 2
    assert "no inputs" in capsys.readouterr().err and not (tmp_path / "o2").exists()


def test_a_refused_engine_leaves_the_job_record_as_it_was(samples, tmp_path, capsys):
    """job.json describes the options behind the parts: a later run refused at its engine must not rewrite it."""
    pytest.importorskip("dask.distributed")
    from ferkit.cli import main

    out = tmp_path / "out"
    photo = tmp_path / "p.jpg"
    photo.write_bytes((samples / "single_face.jpg").read_bytes())
    assert main(["batch", str(photo), "-o", str(out), "-q", "--workers", "1"]) == 0
    job = (out / "job.json").read_text()
    photo.write_bytes((samples / "multi_face.jpg").read_bytes())  # changed: it would be analysed again
    assert main(["batch", str(photo), "-o", str(out), "-q", "--engine", "dask", "--scheduler", "garbage"]) == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
    assert (out / "job.json").read_text() == job


def test_an_interrupt_inside_the_log_append_keeps_the_record(tmp_path, monkeypatch):
    """Ctrl-C landing right after a record's fsync (before append returns) must not drop that record from the
    status table the interrupted run compacts the log into (it did: the table lagged the log by one)."""
    from ferkit.batch.archive import StatusRecord
    from ferkit.batch.run import _replace

    records: dict[str, StatusRecord] = {}
    with Archive(tmp_path / "job") as arch:
        real_append = arch.append

        def append_then_interrupt(rec: StatusRecord) -> None:
            real_append(rec)
            raise KeyboardInterrupt

        monkeypatch.setattr(arch, "append", append_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            _replace(arch, records, StatusRecord("a.jpg"))
        arch.write_status_table(records)
    assert list(records) == ["a.jpg"]
    assert list(Archive(tmp_path / "job", create=False).records()) == ["a.jpg"]


def test_a_results_folder_inside_the_inputs_is_not_walked(samples, tmp_path):
    """`ferkit batch photos/ -o photos/results`: the job's own files are neither inputs nor 'skipped files'."""
    import warnings

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copyfile(samples / "single_face.jpg", photos / "a.jpg")
    run_batch([photos], photos / "results", workers=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run_batch([photos], photos / "results", workers=1)
    assert summary.ok == 1 and summary.analysed == 0  # done last time; nothing of results/ counted
    assert not [w for w in caught if "skipped" in str(w.message)], [str(w.message) for w in caught]
