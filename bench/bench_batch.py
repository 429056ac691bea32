"""Benchmark ``ferkit batch``: photos/s with 1 and 2 local workers, and the Dask engine (LocalCluster, 2 worker
processes on loopback) on the same job. Writes bench/results/batch.{json,md} and batch_scaling.png.

Each configuration analyses the same N photo copies into a fresh job folder. Two rates are reported:
``end_to_end`` (wall time including process start and model loading) and ``steady`` (between the first and the
last finished file). The machine may be shared: run it when it is quiet, and read the numbers as indicative.

    PYTHONPATH=src .venv/bin/python bench/bench_batch.py [--photos 48] [--no-dask]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    from ferkit.batch import run_batch
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))
    from ferkit.batch import run_batch

SAMPLES = ROOT.parent / "shared" / "data" / "samples"
PHOTOS = ("0-f1-su-ph.jpg", "single_face.jpg", "multi_face.jpg", "45-m7-di-ph.jpg")


def one(inputs: Path, out: Path, **kw: object) -> dict[str, float]:
    stamps: list[float] = []
    t0 = time.perf_counter()
    s = run_batch([inputs], out, on_record=lambda r: stamps.append(time.perf_counter()), **kw)
    wall = time.perf_counter() - t0
    n = s.analysed
    steady = (n - 1) / (stamps[-1] - stamps[0]) if n > 1 and stamps[-1] > stamps[0] else 0.0
    return {"files": n, "wall_s": round(wall, 2), "end_to_end_per_s": round(n / wall, 2),
            "steady_per_s": round(steady, 2), "failed": s.failed}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=48)
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ferkit-bench-batch-"))
    try:
        inputs = tmp / "in"
        inputs.mkdir()
        for i in range(args.photos):
            name = PHOTOS[i % len(PHOTOS)]
            shutil.copyfile(SAMPLES / name, inputs / f"{i:04d}-{name}")
        res: dict[str, dict[str, float]] = {}
        res["local_1"] = one(inputs, tmp / "l1", workers=1)
        res["local_2"] = one(inputs, tmp / "l2", workers=2)
        if not args.no_dask:
            from dask.distributed import LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None) as cluster:
                res["dask_2"] = one(inputs, tmp / "d2", engine="dask", scheduler=cluster.scheduler_address)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    info = {"photos": args.photos, "cpu_count": os.cpu_count(), "results": res,
            "note": "2 shared CPU cores; end_to_end includes process start and model loading (one set per worker)"}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "batch.json").write_text(json.dumps(info, indent=1) + "\n")
    lines = ["# ferkit batch: scaling", "",
             f"{args.photos} photos (512-1000 px, 1-5 faces), {os.cpu_count()} CPU cores (shared machine). "
             "Command: `PYTHONPATH=src .venv/bin/python bench/bench_batch.py`", "",
             "| engine | workers | wall s | photos/s end to end | photos/s steady |", "|---|---|---|---|---|"]
    for k, r in res.items():
        eng, w = k.split("_")
        lines.append(f"| {eng} | {w} | {r['wall_s']} | {r['end_to_end_per_s']} | {r['steady_per_s']} |")
    if "dask_2" in res:
        ov = res["dask_2"]["wall_s"] / res["local_2"]["wall_s"] - 1
        lines += ["", f"Dask engine overhead vs the local pool (2 workers, same job, wall time): {100 * ov:+.0f}%"]
    (out / "batch.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        keys = list(res)
        ax.bar([k.replace("_", " x") for k in keys], [res[k]["steady_per_s"] for k in keys], color="#3a66d6",
               label="steady")
        ax.plot([k.replace("_", " x") for k in keys], [res[k]["end_to_end_per_s"] for k in keys], "o-",
                color="#d62728", label="end to end")
        ax.set_ylabel("photos / s")
        ax.set_title(f"ferkit batch, {args.photos} photos, {os.cpu_count()} cores")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "batch_scaling.png", dpi=100)
    except Exception as exc:  # noqa: BLE001 - the figure is optional
        print(f"no figure: {exc}", file=sys.stderr)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
