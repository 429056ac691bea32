"""Choose an ensemble on the validation split only: cache each checkpoint's validation logits, then search
subsets greedily (per-class validation-accuracy weights, per-member temperature, as ``ferkit export``).

Usage: ``python tools/ensemble_search.py fer2013 RUN.pt ... [--max-members 4] [--out FILE.json]``.
No test-split figure is computed here; the chosen ensemble is exported (and tested once) by ``ferkit export``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ferkit.evaluation.metrics import (  # noqa: E402
    class_accuracy_weights,
    class_weighted_average,
    classification_report,
    fit_temperature,
    softmax,
)
from ferkit.training.data import load_dataset  # noqa: E402
from ferkit.training.export import count_macs, load_run_model  # noqa: E402


def val_logits(ckpt: Path, images: np.ndarray, cache_dir: Path, flip: bool) -> np.ndarray:
    cache = cache_dir / f"{ckpt.parent.name}_{ckpt.stem}{'_flip' if flip else ''}.npy"
    if cache.exists():
        return np.load(cache)
    run = ckpt.with_suffix("") if ckpt.suffix == ".pt" and ckpt.with_suffix("").is_dir() else ckpt.parent
    model, _ = load_run_model(run, ckpt)
    x = torch.from_numpy(images[:, None].astype(np.float32) / 255)
    with torch.no_grad():
        z = torch.cat([model(x[i:i + 256]) for i in range(0, len(x), 256)])
        if flip:
            z = (z + torch.cat([model(torch.flip(x[i:i + 256], dims=[3])) for i in range(0, len(x), 256)])) / 2
    z = z.numpy()
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, z)
    (cache.with_suffix(".macs")).write_text(str(count_macs(model, 48)))
    return z


def ensemble_probs(members: list[tuple[np.ndarray, float, np.ndarray]]) -> np.ndarray:
    """Members as (logits, temperature, per-class validation accuracy)."""
    return class_weighted_average([softmax(z, t) for z, t, _ in members], np.stack([m[2] for m in members]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("data", choices=["ferplus", "fer2013"])
    ap.add_argument("ckpts", nargs="+", type=Path)
    ap.add_argument("--max-members", type=int, default=4)
    ap.add_argument("--flip", action="store_true")
    ap.add_argument("--cache", type=Path, default=Path("/work/runs/val_cache"))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    val = load_dataset(args.data, "val")
    y = val.labels
    info = {}
    for c in args.ckpts:
        z = val_logits(c, val.images, args.cache / args.data, args.flip)
        t = fit_temperature(z, y)
        rep = classification_report(y, softmax(z, t), val.classes)
        pc = class_accuracy_weights([{k: v["top1"] for k, v in rep["per_class"].items()}], val.classes)[0]
        macs = int((args.cache / args.data / f"{c.parent.name}_{c.stem}{'_flip' if args.flip else ''}.macs")
                   .read_text())
        info[str(c)] = (z, t, pc, rep["accuracy"], macs)
        print(f"{c}: val {rep['accuracy']:.4f}  T={t:.3f}  MMAC={macs / 1e6:.0f}", flush=True)
    rows = []
    names = list(info)
    for k in range(1, min(args.max_members, len(names)) + 1):
        for combo in itertools.combinations(names, k):
            p = ensemble_probs([info[n][:3] for n in combo])
            acc = float((p.argmax(1) == y).mean())
            rows.append({"members": list(combo), "val_acc": acc, "mmac": sum(info[n][4] for n in combo) / 1e6})
    rows.sort(key=lambda r: -r["val_acc"])
    for r in rows[:15]:
        names = [Path(m).parent.name + "/" + Path(m).stem for m in r["members"]]
        print(f"{r['val_acc']:.4f}  {r['mmac']:7.0f} MMAC  {names}")
    if args.out:
        args.out.write_text(json.dumps({"data": args.data, "flip": args.flip, "n_val": int(len(y)), "rows": rows},
                                       indent=1))


if __name__ == "__main__":
    main()
