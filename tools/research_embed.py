"""Autoencoder study (issue 5): dense and convolutional autoencoders on FER+ training faces (labels unused),
k-means (8 clusters) on the latent codes named by majority label, and the semi-supervised classifier (frozen
encoder + MLP head trained on 20 % of the labelled training faces).

Outputs: /work/runs/research/ferplus_ae<kind>_semi/ (loadable run dirs: config.json, best.pt, metrics.json,
val_logits.npy), docs/research/runs/<name>/ (config, log, metrics) and docs/research/embeddings.json.
Usage: ``python tools/research_embed.py [--minutes 3] [--epochs 8]``; a smoke run that leaves the repo alone:
``python tools/research_embed.py --kinds dense --epochs 1 --max-train 500 --out /tmp/ae --docs /tmp/ae/docs``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ferkit.embed.autoencoder import AEClassifier, encode, make_autoencoder, train_autoencoder, train_head  # noqa: E402
from ferkit.embed.cluster import cluster_accuracy  # noqa: E402
from ferkit.evaluation.metrics import classification_report, fit_temperature, softmax  # noqa: E402
from ferkit.models import create_model  # noqa: E402
from ferkit.training.data import load_npz  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kinds", nargs="*", default=["dense", "conv"])
    ap.add_argument("--minutes", type=float, default=3.0, help="wall-clock budget per autoencoder")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--label-fraction", type=float, default=0.2)
    ap.add_argument("--out", default="/work/runs/research", help="run folders (checkpoints)")
    ap.add_argument("--docs", default=str(ROOT / "docs" / "research"),
                    help="where the records go (runs/<name>/ and embeddings.json; default: the repo's docs/research)")
    ap.add_argument("--max-train", type=int, default=0, help="> 0: only the first N training faces (a smoke run)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tr, va, te = load_npz("train", "ferplus"), load_npz("val", "ferplus"), load_npz("test", "ferplus")
    if args.max_train > 0:
        tr = tr.subset(np.arange(min(args.max_train, len(tr))))
    scored = np.flatnonzero(tr.labels >= 0)
    rng = np.random.default_rng(0)
    few = np.sort(rng.choice(scored, int(round(args.label_fraction * len(scored))), replace=False))
    summary: dict[str, object] = {"label_fraction": args.label_fraction, "n_labelled": int(len(few)),
                                  "pretrain_images": int(len(tr)), "clusters": 8}
    # Baseline: k-means on PCA-64 of raw pixels.
    from sklearn.decomposition import PCA

    pca = PCA(64, random_state=0).fit(tr.images.reshape(len(tr), -1).astype(np.float32))
    zp_tr = pca.transform(tr.images.reshape(len(tr), -1).astype(np.float32))
    zp_te = pca.transform(te.images.reshape(len(te), -1).astype(np.float32))
    summary["pixels_pca64"] = {"cluster_test_accuracy": cluster_accuracy(zp_tr[scored], tr.labels[scored], zp_te,
                                                                         te.labels)["accuracy"]}
    for kind in args.kinds:
        name = f"ferplus_ae{kind}_semi"
        run = Path(args.out) / name
        run.mkdir(parents=True, exist_ok=True)
        log: list[dict] = []
        t0 = time.time()
        ae = train_autoencoder(make_autoencoder(kind), tr.images, epochs=args.epochs, minutes=args.minutes, log=log)
        ae_s = time.time() - t0
        torch.save({"model": ae.state_dict()}, Path(args.out) / f"ae_{kind}.pt")
        z_tr, z_va, z_te = (encode(ae.encoder, s.images) for s in (tr, va, te))
        np.save(run / "test_embeddings.npy", z_te.astype(np.float32))
        cl = cluster_accuracy(z_tr[scored], tr.labels[scored], z_te, te.labels)
        model = create_model(f"ae_{kind}_clf")
        clf: AEClassifier = model.backbone
        clf.encoder.load_state_dict(ae.encoder.state_dict())
        train_head(clf, z_tr[few], tr.targets[few])
        with torch.no_grad():
            logits = clf.fc(clf.head(torch.from_numpy(z_va))).numpy()
        temp = fit_temperature(logits, va.labels)
        rep = classification_report(va.labels, softmax(logits), va.classes)
        cfg = {"model": f"ae_{kind}_clf", "model_kwargs": {}, "data": "ferplus", "channels": 1,
               "semi_supervised": {"encoder": f"{kind} autoencoder, MSE, pre-trained on all {len(tr)} training "
                                              "faces (labels unused), frozen",
                                   "head": f"MLP on {len(few)} labelled faces ({args.label_fraction:.0%}), "
                                           "soft-vote CE, 60 epochs"}}
        wall = round(time.time() - t0, 1)
        metrics = {"model": cfg["model"], "classes": list(va.classes), "val": rep, "temperature": temp,
                   "epochs_run": len(log), "wall_s": wall, "autoencoder_wall_s": round(ae_s, 1), "device": "cpu",
                   "hardware": platform.processor() or "cpu", "train_images": int(len(few)),
                   "params": sum(p.numel() for p in model.parameters()),
                   "cluster_test_accuracy": cl["accuracy"], "cluster_names": [va.classes[i] if i >= 0 else None
                                                                              for i in cl["cluster_names"]]}
        (run / "config.json").write_text(json.dumps(cfg, indent=2))
        (run / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
        np.save(run / "val_logits.npy", logits.astype(np.float32))
        torch.save({"model": model.state_dict()}, run / "best.pt")
        doc = Path(args.docs) / "runs" / name
        doc.mkdir(parents=True, exist_ok=True)
        for f in ("config.json", "log.jsonl", "metrics.json"):
            shutil.copy(run / f, doc / f)
        summary[kind] = {"autoencoder_epochs": len(log), "autoencoder_wall_s": round(ae_s, 1),
                         "final_mse": log[-1]["mse"] if log else None, "cluster_test_accuracy": cl["accuracy"],
                         "cluster_names": metrics["cluster_names"], "semi_val_accuracy": rep["accuracy"]}
        print(json.dumps({name: summary[kind]}), flush=True)
    out = Path(args.docs) / "embeddings.json"
    old = json.loads(out.read_text()) if out.exists() else {}
    old.update(summary)
    out.write_text(json.dumps(old, indent=2))


if __name__ == "__main__":
    main()
