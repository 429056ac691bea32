"""Train the research models of issue 5 on the CPU with short wall-clock budgets (one thread).

Checkpoints go to /work/runs/research/<name>/ (not in git); config, log and metrics are copied to
docs/research/runs/<name>/. Usage: ``python tools/research_train.py [ran vit_tiny landmark_transformer] [--minutes M]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ferkit.training.trainer import TrainConfig, train  # noqa: E402

#: name -> (registered model, model kwargs, wall-clock budget in minutes, lr)
PLAN: dict[str, tuple[str, dict, float, float]] = {
    "ferplus_ran_cpu": ("ran", {}, 40.0, 2e-3),
    "ferplus_ranmesh_cpu": ("ran", {"placement": "mesh"}, 40.0, 2e-3),
    "ferplus_lmt_cpu": ("landmark_transformer", {}, 30.0, 1e-3),
    "ferplus_vit_cpu": ("vit_tiny", {}, 30.0, 1e-3),
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="*", default=list(PLAN))
    ap.add_argument("--minutes", type=float, default=0.0, help="override every budget")
    ap.add_argument("--out", default="/work/runs/research")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run (default: start afresh)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    for name in args.runs:
        model, kwargs, minutes, lr = PLAN[name]
        cfg = TrainConfig(model=model, model_kwargs=kwargs, data="ferplus", scheme="cel", epochs=40, batch_size=64,
                          lr=lr, warmup_epochs=0.3, deadline_min=args.minutes or minutes, workers_threads=1,
                          device="cpu", patience=0, seed=0)
        run_dir = Path(args.out) / name
        if run_dir.exists() and not args.resume:
            shutil.rmtree(run_dir)
        metrics = train(cfg, run_dir, quiet=True)
        doc = ROOT / "docs" / "research" / "runs" / name
        doc.mkdir(parents=True, exist_ok=True)
        for f in ("config.json", "log.jsonl", "metrics.json"):
            shutil.copy(run_dir / f, doc / f)
        print(json.dumps({"run": name, "val_acc": metrics["val"]["accuracy"], "epochs": metrics["epochs_run"],
                          "wall_s": metrics["wall_s"]}), flush=True)


if __name__ == "__main__":
    main()
