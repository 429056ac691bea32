"""The Dask engine on a real LocalCluster (2 worker processes on loopback) gives the local engine's rows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ferkit.batch import read_archive, run_batch

distributed = pytest.importorskip("dask.distributed", reason="dask[distributed] is not installed")

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_dask_engine_equals_local(local_job, tmp_path, monkeypatch):
    inputs, local_out, local_summary = local_job
    monkeypatch.setenv("PYTHONPATH", SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, protocol="tcp") as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        s = run_batch([inputs], tmp_path / "out", engine="dask", scheduler=cluster.scheduler_address)
        workers = {w for w in read_status_workers(tmp_path / "out")}
    assert (s.ok, s.no_face, s.failed, s.rows) == (local_summary.ok, local_summary.no_face, local_summary.failed,
                                                     local_summary.rows)
    a = read_archive(local_out).sort_values(["source", "frame", "face_id"]).reset_index(drop=True)
    b = read_archive(tmp_path / "out").sort_values(["source", "frame", "face_id"]).reset_index(drop=True)
    import pandas as pd

    pd.testing.assert_frame_equal(a, b)
    assert len(workers) >= 1


def read_status_workers(out: Path) -> list[str]:
    import pandas as pd

    st = pd.read_csv(out / "status.csv")
    return [w for w in st["worker"].dropna() if w]
