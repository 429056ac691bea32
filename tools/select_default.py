"""Pick the shipped model from an int8 search by *measured* speed, without reading the test split.

``tools/int8_tta_search.py`` ranks member subsets x TTA view sets by validation accuracy and estimates their
speed from each member's single-thread speed; the estimate is off by up to 15 % against the whole exported graph.
This tool walks the ranking from the top, exports each candidate as ``ferkit export --int8 ... --no-test`` would
(validation only), measures it as ``bench/bench_models.py`` does (batch 64: one process x 2 threads and
2 processes x 1 thread) and stops at the first one whose slower figure reaches ``--min-fps`` and whose file is
under ``--max-mb``. It prints the ``ferkit export`` command that ships it (that one reads the test split, once).

    python tools/select_default.py ferplus_int8_search.json --runs /work/runs [--min-fps 500] [--max-mb 25]
        [--min-est 200] [--tries 6] [--out-dir /tmp/ferkit_select] [--log select.json]

Candidates estimated below ``--min-est`` faces/s per thread are skipped unmeasured (they cannot be fast enough).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

sys.path.insert(0, str(ROOT / "tools"))

from bench_models import _throughput, _worker  # noqa: E402
from int8_tta_search import SCALES, VIEW_SETS  # noqa: E402


def export_views(view_set: str) -> tuple[tuple[float, ...] | None, bool]:
    """A view set of the search (indices into [s0, s0 mirrored, s1, s1 mirrored, ...] over ``SCALES``) as the
    ``(tta_scales, tta_flip)`` of ``ferkit export``; the plain view alone is no TTA at all."""
    idx = VIEW_SETS[view_set]
    scales = tuple(sorted({SCALES[i // 2] for i in idx}))
    flip = any(i % 2 for i in idx)
    return (None, True) if scales == (1.0,) and not flip else (scales, flip)


VIEWS = {v: export_views(v) for v in VIEW_SETS}


def members_of(row: dict, runs: Path) -> list[tuple[Path, Path]]:
    """``"call/run"`` names of the search -> (run directory, checkpoint ``run.pt`` beside it)."""
    out = []
    for m in row["members"]:
        run = runs / m
        ck = run.with_suffix(".pt")
        if not (run / "config.json").is_file() or not ck.is_file():
            raise SystemExit(f"{m}: expected {run}/config.json and {ck}")
        out.append((run, ck))
    return out


def export_command(row: dict, runs: Path, name: str, out_dir: str) -> str:
    scales, flip = VIEWS[row["views"]]
    cmd = ["ferkit export", *(f"{r}:{c}" for r, c in members_of(row, runs)), f"--name {name}", "--data ferplus",
           "--int8 percentile", f"--out-dir {out_dir}"]
    if scales:
        cmd.append("--tta-scales " + " ".join(f"{s:g}" for s in scales))
        if not flip:
            cmd.append("--no-tta-flip")
    return " ".join(cmd)


def measure(path: Path, seconds: float) -> tuple[float, float]:
    one = _throughput(str(path), 2, seconds)
    with mp.get_context("spawn").Pool(2) as pool:
        two = sum(pool.map(_worker, [(str(path), seconds)] * 2))
    return one, two


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("search", type=Path, help="JSON written by tools/int8_tta_search.py --out")
    ap.add_argument("--runs", type=Path, required=True, help="folder holding CALL/RUN/ and CALL/RUN.pt")
    ap.add_argument("--min-fps", type=float, default=500.0)
    ap.add_argument("--max-mb", type=float, default=25.0)
    ap.add_argument("--min-est", type=float, default=200.0, help="skip candidates estimated slower (per thread)")
    ap.add_argument("--tries", type=int, default=6, help="measure at most this many candidates")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--out-dir", type=Path, default=Path("/tmp/ferkit_select"))
    ap.add_argument("--log", type=Path, help="write every measured candidate here (JSON)")
    args = ap.parse_args(argv)
    from ferkit.training.export import export_runs

    doc = json.loads(args.search.read_text())
    if doc.get("data") != "ferplus":
        raise SystemExit("this tool selects FER+ models (the search's data is not ferplus)")
    rows = [r for r in doc["rows"] if r["fps_1thread"] >= args.min_est]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    tried, chosen = [], None
    for k, row in enumerate(rows[: args.tries]):
        scales, flip = VIEWS[row["views"]]
        t0 = time.time()
        card = export_runs([(r, c) for r, c in members_of(row, args.runs)], f"cand{k}", args.out_dir,
                           data="ferplus", evaluate_test=False, int8="percentile", tta_scales=scales, tta_flip=flip)
        onnx = args.out_dir / f"cand{k}.onnx"
        one, two = measure(onnx, args.seconds)
        mb = onnx.stat().st_size / 1e6
        ok = min(one, two) >= args.min_fps and mb < args.max_mb
        rec = {**row, "exported_val_acc": card["metrics"]["val"]["accuracy"], "faces_per_s_1proc_2threads": round(one),
               "faces_per_s_2proc_1thread": round(two), "file_mb": round(mb, 1), "passes": ok,
               "seconds": round(time.time() - t0)}
        tried.append(rec)
        print(f"{row['val_acc']:.4f} (exported {rec['exported_val_acc']:.4f})  est {row['fps_1thread']:4.0f}/thread  "
              f"measured {one:4.0f} / {two:4.0f} faces/s  {mb:4.1f} MB  {'PASS' if ok else 'too slow or large'}  "
              f"{row['views']:<10} {row['members']}", flush=True)
        if ok:
            chosen = row
            break
    if args.log:
        args.log.write_text(json.dumps({"min_fps": args.min_fps, "max_mb": args.max_mb, "tried": tried}, indent=1))
    if chosen is None:
        raise SystemExit(f"none of the {len(tried)} candidates measured reaches {args.min_fps:g} faces/s under "
                         f"{args.max_mb:g} MB; raise --tries or --min-est")
    print("\nship it (this reads the test split, once):\n  "
          + export_command(chosen, args.runs, "default", "src/ferkit/weights"))


if __name__ == "__main__":
    main()
