"""How far can an ensemble of the runs we have go? An honest estimate from validation only.

Reads each run's saved ``val_logits.npy`` (written by ``ferkit train``), then compares, on random halves of the
validation split, ensembles *chosen on one half and scored on the other* (greedy forward selection with
repetition, the top-K runs by accuracy, all runs), so that the selection does not flatter the figure. The greedy
choice on the whole split is printed too, as the optimistic number it is.

Usage: ``python tools/ensemble_ceiling.py RUN_DIR ... [--data ferplus] [--halvings 5] [--steps 8]``.
No test-split figure is computed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ferkit.evaluation.metrics import softmax  # noqa: E402
from ferkit.training.data import load_dataset  # noqa: E402


def accuracy(p: np.ndarray, y: np.ndarray, idx: np.ndarray) -> float:
    return float((p[idx].argmax(1) == y[idx]).mean())


def greedy(probs: dict[str, np.ndarray], y: np.ndarray, idx: np.ndarray, steps: int) -> list[str]:
    """Forward selection with repetition (Caruana et al. 2004) of equal-weight probability averages."""
    cur: np.ndarray | float = 0.0
    chosen: list[str] = []
    for _ in range(steps):
        best = max(probs, key=lambda k: accuracy(cur + probs[k], y, idx))
        cur = cur + probs[best]
        chosen.append(best)
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories with val_logits.npy")
    ap.add_argument("--data", default="ferplus")
    ap.add_argument("--halvings", type=int, default=5)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    y = load_dataset(args.data, "val").labels
    probs: dict[str, np.ndarray] = {}
    for run in args.runs:
        f = run / "val_logits.npy"
        z = np.load(f) if f.is_file() else None
        if z is None or z.shape[0] != len(y):
            print(f"skipped {run}: no val_logits.npy of {len(y)} rows", file=sys.stderr)
            continue
        probs[f"{run.parent.name}/{run.name}"] = softmax(z, 1.0)
    if len(probs) < 2:
        sys.exit("need at least two runs with validation logits")
    scored = np.flatnonzero(y >= 0)
    print(f"{len(probs)} runs, {len(scored)} scored validation faces")
    for k, p in sorted(probs.items(), key=lambda kv: -accuracy(kv[1], y, scored)):
        print(f"  {accuracy(p, y, scored):.4f}  {k}")
    chosen = greedy(probs, y, scored, args.steps)
    print(f"greedy on all of validation (optimistic): {accuracy(sum(probs[k] for k in chosen), y, scored):.4f} "
          f"with {', '.join(chosen)}")
    rng = np.random.default_rng(args.seed)
    res: dict[str, list[float]] = {"greedy": [], "top3": [], "top4": [], "top6": [], "all": []}
    for _ in range(args.halvings):
        perm = rng.permutation(scored)
        a, b = perm[: len(perm) // 2], perm[len(perm) // 2:]
        for fit, score in ((a, b), (b, a)):
            res["greedy"].append(accuracy(sum(probs[k] for k in greedy(probs, y, fit, args.steps)), y, score))
            rank = sorted(probs, key=lambda k: -accuracy(probs[k], y, fit))
            for n in (3, 4, 6):
                res[f"top{n}"].append(accuracy(sum(probs[k] for k in rank[:n]), y, score))
            res["all"].append(accuracy(sum(probs.values()), y, score))
    print(f"chosen on one half, scored on the other ({args.halvings} halvings x 2):")
    for k, v in res.items():
        print(f"  {k:7s} {np.mean(v):.4f} +- {np.std(v):.4f}")


if __name__ == "__main__":
    main()
