"""Cost of the video analytics (tracking, smoothing, aggregation) relative to ``ferkit analyze``, and the clip
verdict experiment on FER+ pseudo-clips.

Usage::

    python bench/bench_video.py [--video PATH] [--every 1] [--out bench/results/video.md]
    python bench/bench_video.py --verdict [--clips 150] [--seed 0]

Speed: analyses the sample video once (default settings, models warm), then times, on its rows, the tracker
(the ``Analyzer(tracker=...)`` hook work: ``Tracker.assign`` over the tables), per-track smoothing (EMA 0.5 s)
and the summaries (video, track, 5 s intervals). Prints their time as a share of the analysis time.

Verdict: scores the FER+ validation and test images with the default model (no torch), builds pseudo-clips per
gold class from ``k`` images of that class plus a share ``f`` of neutral frames (the onset / offset of an
expression), and reports the balanced accuracy of each verdict method: on validation (PublicTest), where the
default method is chosen, and on test (PrivateTest), reported beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
SAMPLES = REPO.parent / "shared" / "data" / "samples"


def bench_speed(video: Path, every: int) -> str:
    from ferkit.pipeline import Analyzer
    from ferkit.video import Tracker, VideoAnalytics

    with Analyzer(every=every) as az:
        az.analyze(str(video))  # warm up (models, worker processes)
        t0 = time.perf_counter()
        res = az.analyze(str(video))
        t_analyze = time.perf_counter() - t0
    trk = Tracker()
    t0 = time.perf_counter()
    for _ in range(5):
        trk.reset(str(video))
        for tab in res.tables:
            trk.assign(tab)
    t_track = (time.perf_counter() - t0) / 5
    t0 = time.perf_counter()
    df = res.to_pandas()
    t_pandas = time.perf_counter() - t0

    def analytics() -> tuple[float, float]:
        a = time.perf_counter()
        va = VideoAnalytics.from_frame(df, smooth_s=0.5, track=True)
        va.tracks()
        b = time.perf_counter()
        va.summary("video"), va.summary("track"), va.summary("interval")
        return b - a, time.perf_counter() - b

    analytics()  # warm up (first pandas calls)
    runs = sorted(analytics() for _ in range(5))
    t_rows, t_sum = runs[2]
    extra = t_track + t_rows + t_sum
    lines = [
        f"video: {video.name}, every {every}: {len(res)} face rows, {res.statuses[0].frames} frames analysed",
        f"load: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        f"analyze (warm, default settings): {t_analyze:.3f} s",
        f"tracker hook (Tracker.assign on all tables): {1000 * t_track:.1f} ms",
        f"results.to_pandas() (the table itself, not analytics): {1000 * t_pandas:.1f} ms",
        f"VideoAnalytics.tracks() (re-track + EMA 0.5 s + quality + sentiment): {1000 * t_rows:.1f} ms",
        f"summaries (video + track + 5 s intervals): {1000 * t_sum:.1f} ms",
        f"tracking + smoothing + aggregation: {1000 * extra:.1f} ms = {100 * extra / t_analyze:.2f} % of the "
        f"analysis (hook only: {100 * t_track / t_analyze:.2f} %; with to_pandas: "
        f"{100 * (extra + t_pandas) / t_analyze:.2f} %)",
    ]
    return "\n".join(lines)


def _probs(split: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from ferkit.inference import ExpressionModel
    from ferkit.training.data import load_npz

    fs = load_npz(split, "ferplus")
    keep = fs.labels >= 0
    m = ExpressionModel.load("default", threads=2)
    imgs = fs.images[keep]
    p = np.concatenate([m.predict(imgs[i:i + 256]) for i in range(0, len(imgs), 256)])
    return p, fs.labels[keep], tuple(m.classes)


def bench_verdict(n_clips: int, seed: int) -> str:
    """Validation table (selection), then the test table."""
    parts = [_verdict_table(split, n_clips, seed) for split in ("val", "test")]
    return "\n\n".join(parts)


def _verdict_table(split: str, n_clips: int, seed: int) -> str:
    from ferkit.video.aggregate import verdict

    P, y, classes = _probs(split)
    C = len(classes)
    neu = classes.index("neutral")
    rng = np.random.default_rng(seed)
    by = [np.flatnonzero(y == c) for c in range(C)]
    methods = {"majority": {"method": "majority"}, "mean": {"method": "mean"},
               "weighted 0.3": {"method": "weighted", "neutral_weight": 0.3},
               "weighted 0.5": {"method": "weighted", "neutral_weight": 0.5},
               "peak 0.3": {"method": "peak", "peak_fraction": 0.3},
               "peak 0.5 (default)": {"method": "peak", "peak_fraction": 0.5}}
    grid = [(k, f) for k in (3, 5, 10) for f in (0.0, 0.3, 0.5, 0.7)]
    res = {m: {} for m in methods}
    neutral_recall = {m: [] for m in methods}
    for k, f in grid:
        hits = {m: np.zeros(C) for m in methods}
        for c in range(C):
            for _ in range(n_clips):
                p = P[rng.choice(by[c], k, replace=len(by[c]) < k)]
                if c != neu and f > 0:
                    p = np.vstack([p, P[rng.choice(by[neu], int(round(f * k / (1 - f))))]])
                for m, kw in methods.items():
                    hits[m][c] += verdict(p, classes, **kw) == classes[c]
        for m in methods:
            rec = hits[m] / n_clips
            res[m][(k, f)] = rec.mean()
            neutral_recall[m].append(rec[neu])
    head = "| method | " + " | ".join(f"k{k} f{f}" for k, f in grid) + " | mean f<=0.5 | mean all | neutral recall |"
    name = {"val": "validation (PublicTest; the default is chosen here)", "test": "test (PrivateTest)"}[split]
    lines = [f"### FER+ {name}", "", f"{len(P)} images, {n_clips} pseudo-clips per class and cell, balanced accuracy;",
             "k = images of the gold class per clip, f = share of neutral frames added to non-neutral clips", "",
             head, "|---" * (len(grid) + 4) + "|"]
    for m in methods:
        vals = [res[m][g] for g in grid]
        le = [res[m][g] for g in grid if g[1] <= 0.5]
        lines.append(f"| {m} | " + " | ".join(f"{v:.3f}" for v in vals) +
                     f" | {np.mean(le):.3f} | {np.mean(vals):.3f} | {np.mean(neutral_recall[m]):.2f} |")
    per_frame = (P.argmax(1) == y)
    lines.append("")
    lines.append(f"per-frame balanced accuracy: {np.mean([per_frame[y == c].mean() for c in range(C)]):.3f}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=SAMPLES / "WolfgangLanger_Pexels.mp4")
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--verdict", action="store_true", help="run the verdict experiment instead")
    ap.add_argument("--clips", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="also write the result here (Markdown)")
    a = ap.parse_args()
    text = bench_verdict(a.clips, a.seed) if a.verdict else bench_speed(a.video, a.every)
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
