"""Choose a shipped model on the validation split only: int8-quantize each candidate checkpoint (as
``ferkit export --int8`` does), compute its validation logits on the test-time-augmentation views of
``ferkit.training.export.TTA`` (zoom 0.92 / 1 / 1.08, each mirrored), and rank member subsets x view sets by
validation accuracy, with the measured int8 speed of each member (faces/s, one thread, batch 64).

Usage: ``python tools/int8_tta_search.py ferplus RUN.pt ... [--max-members 3] [--out FILE.json]``.
The test split is not touched; the chosen model is exported (and tested once) by ``ferkit export``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
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
from ferkit.training.export import TTA, load_run_model, to_onnx  # noqa: E402
from ferkit.training.quantize import quantize_int8  # noqa: E402

SCALES = (0.92, 1.0, 1.08)
#: view sets: indices into the 6 views [s0.92, s0.92 flipped, s1, s1 flipped, s1.08, s1.08 flipped]
VIEW_SETS = {"none": [2], "flip": [2, 3], "zoom3": [0, 2, 4], "zoom3+flip": [0, 1, 2, 3, 4, 5],
             "zoom2+flip": [2, 3, 4, 5]}


def session(path: Path):  # noqa: ANN201
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def speed(sess, batch: int = 64, reps: int = 12) -> float:  # noqa: ANN001
    x = np.random.default_rng(0).random((batch, 1, 48, 48), dtype=np.float32)
    sess.run(None, {"input": x})
    best = 1e9
    for _ in range(reps):
        t = time.perf_counter()
        sess.run(None, {"input": x})
        best = min(best, time.perf_counter() - t)
    return batch / best


def member(ckpt: Path, data: str, val_images: np.ndarray, calib: np.ndarray, cache: Path, method: str) -> dict:
    tag = f"{ckpt.parent.name}_{ckpt.stem}_{method}"
    npz = cache / f"{tag}.npz"
    if npz.exists():
        z = np.load(npz)
        return {"logits": z["logits"], "fps": float(z["fps"])}
    run = ckpt.with_suffix("")
    model, _ = load_run_model(run, ckpt)
    f32, q8 = cache / f"{tag}.f32.onnx", cache / f"{tag}.int8.onnx"
    to_onnx(model, f32, compress=False)
    quantize_int8(f32, q8, calib, method=method)
    sess = session(q8)
    x = torch.from_numpy(val_images[:, None].astype(np.float32) / 255)
    views = TTA(model, SCALES, flip=True).views(x)
    logits = np.stack([np.concatenate([sess.run(None, {"input": v[i:i + 256].numpy()})[0]
                                       for i in range(0, len(v), 256)]) for v in views])
    fps = speed(sess)
    np.savez(npz, logits=logits, fps=fps)
    f32.unlink()
    return {"logits": logits, "fps": fps}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("data", choices=["ferplus", "fer2013"])
    ap.add_argument("ckpts", nargs="+", type=Path)
    ap.add_argument("--max-members", type=int, default=3)
    ap.add_argument("--method", default="percentile")
    ap.add_argument("--cache", type=Path, default=Path("/work/runs/int8_cache"))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cache = args.cache / args.data
    cache.mkdir(parents=True, exist_ok=True)
    val = load_dataset(args.data, "val")
    train = load_dataset(args.data, "train")
    pick = np.sort(np.random.default_rng(0).choice(len(train.images), 1024, replace=False))
    y, classes = val.labels, val.classes
    info = {}
    for c in args.ckpts:
        m = member(c, args.data, val.images, train.images[pick], cache, args.method)
        info[f"{c.parent.name}/{c.stem}"] = m
        accs = {k: float((m["logits"][v].mean(0)[y >= 0].argmax(1) == y[y >= 0]).mean()) for k, v in VIEW_SETS.items()}
        print(f"{c.parent.name}/{c.stem}: int8 {m['fps']:.0f} faces/s/thread  " +
              "  ".join(f"{k} {a:.4f}" for k, a in accs.items()), flush=True)
    # Temperature-scaled probabilities and per-class validation accuracy of every member x view set, once.
    scaled: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for n, m in info.items():
        for vs, idx in VIEW_SETS.items():
            z = m["logits"][idx].mean(0)
            p = softmax(z, fit_temperature(z, y))
            rep = classification_report(y, p, classes)
            scaled[n, vs] = p, class_accuracy_weights([{c: v["top1"] for c, v in rep["per_class"].items()}],
                                                      classes)[0]
    rows = []
    names = list(info)
    for k in range(1, min(args.max_members, len(names)) + 1):
        for combo in itertools.combinations(names, k):
            for vs, idx in VIEW_SETS.items():
                p = class_weighted_average([scaled[n, vs][0] for n in combo],
                                           np.stack([scaled[n, vs][1] for n in combo]))
                acc = float((p[y >= 0].argmax(1) == y[y >= 0]).mean())
                fps = 1.0 / sum(len(idx) / info[n]["fps"] for n in combo)
                rows.append({"members": list(combo), "views": vs, "val_acc": acc, "fps_1thread": fps})
    rows.sort(key=lambda r: -r["val_acc"])
    for r in rows[:25]:
        print(f"{r['val_acc']:.4f}  {r['fps_1thread']:6.0f} f/s/thr  {r['views']:<11} {r['members']}")
    if args.out:
        args.out.write_text(json.dumps({"data": args.data, "method": args.method, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
