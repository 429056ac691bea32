"""Expression-model throughput in onnxruntime on this CPU, side by side in one run.

    python bench/bench_models.py [--seconds 3] [--extra path/to/model.onnx ...]

For each model: faces/s at batch 64 with (a) one process, 2 intra-op threads and (b) 2 worker processes
with one intra-op thread each (how the pipeline and batch engines run). A mini-Xception-sized model
(the `fer` package's architecture, exported from ferkit's registry with random weights: speed does
not depend on the weights) is measured in the same run as the reference.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _throughput(path_or_bytes: str | bytes, threads: int, seconds: float, batch: int = 64) -> float:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path_or_bytes, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).random((batch, 1, 48, 48), dtype=np.float32)
    sess.run(None, {name: x})
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sess.run(None, {name: x})
        n += batch
    return n / (time.perf_counter() - t0)


def _worker(args: tuple[str | bytes, float]) -> float:
    return _throughput(args[0], 1, args[1])


def reference_models() -> dict[str, bytes]:
    """mini-Xception (64 px, as in `fer`) exported from the registry; needs torch."""
    try:
        import torch

        from ferkit.models import create_model
        from ferkit.training.export import to_onnx
    except ImportError:
        return {}
    out = {}
    for name, kw in {"mini_xception (fer-sized, 64 px)": {"input_size": 64}}.items():
        torch.manual_seed(0)
        buf = io.BytesIO()
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "ferkit_bench_ref.onnx"
        to_onnx(create_model("mini_xception", num_classes=7, **kw), tmp)
        buf.write(tmp.read_bytes())
        out[name] = buf.getvalue()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--extra", nargs="*", default=[])
    ap.add_argument("--json", help="also write results here")
    args = ap.parse_args()
    weights = ROOT / "src" / "ferkit" / "weights"
    models: dict[str, str | bytes] = {p.stem: str(p) for p in sorted(weights.glob("*.onnx"))}
    models.update({Path(p).stem: p for p in args.extra})
    models.update(reference_models())
    rows = []
    ctx = mp.get_context("spawn")
    for name, src in models.items():
        one = _throughput(src, 2, args.seconds)
        with ctx.Pool(2) as pool:
            two = sum(pool.map(_worker, [(src, args.seconds)] * 2))
        size = Path(src).stat().st_size / 1e6 if isinstance(src, str) else len(src) / 1e6
        rows.append({"model": name, "faces_per_s_1proc_2threads": round(one), "faces_per_s_2proc_1thread": round(two),
                     "file_mb": round(size, 1)})
        print(f"{name:<36} 1 proc x 2 threads: {one:7.0f} faces/s   2 procs x 1 thread: {two:7.0f} faces/s   "
              f"{size:5.1f} MB", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
                                               "load": os.getloadavg(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
