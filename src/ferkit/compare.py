"""Compare trained models on the FER+ test split (PrivateTest) in one table: per-class top-1 / top-2 accuracy,
their mean and variance across classes, overall accuracy, params, MACs, CPU faces/s (onnxruntime, one intra-op
thread, batch 64) and accuracy on the robustness subsets, for every model and for the accuracy-weighted
ensemble of all of them (with two or more). Best value of each column in bold.

Temperatures and ensemble weights come from the validation split (PublicTest) only.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import UnknownModelError
from .evaluation.metrics import (
    class_accuracy_weights,
    class_weighted_average,
    classification_report,
    fit_temperature,
    softmax,
)
from .training.data import load_npz

#: Where the checkpoints live (not in git): ``$FERKIT_RUNS``, default ``/work/runs`` as on the training machine.
RUNS = Path(os.environ.get("FERKIT_RUNS", "/work/runs"))
COMPARE_CACHE = RUNS / "research" / "compare_cache"
MESH_CACHE = RUNS / "research" / "test_mesh.npz"
#: (run name, folder holding ``<name>/`` and ``<name>.pt``); research runs keep ``best.pt`` in their run dir.
BASELINES: list[tuple[str, str]] = [
    ("ferplus_rf48_kd", "gpu3"), ("ferplus_resnetfast_cel", "gpu2"), ("ferplus_resnetfast_mv", "gpu2"),
    ("ferplus_resnet18_cel", "gpu2"), ("ferplus_eff112_cel", "gpu2"), ("ferplus_eff112_pld", "gpu2"),
    ("ferplus_eff96_cel", "gpu2"), ("ferplus_minixception_cel", "gpu2"), ("ferplus_vgg13_cel", "gpu1"),
    ("ferplus_cnn4_cel", "gpu1"), ("ferplus_eff80_cel", "gpu1"),
]
RESEARCH: list[str] = ["ferplus_ran_cpu", "ferplus_ranmesh_cpu", "ferplus_lmt_cpu", "ferplus_vit_cpu",
                       "ferplus_aedense_semi", "ferplus_aeconv_semi"]


@dataclass
class Entry:
    """A trained model: its run directory (config.json, metrics.json, val_logits.npy) and checkpoint."""

    name: str
    run_dir: Path
    checkpoint: Path

    def load(self) -> tuple[nn.Module, dict[str, Any]]:
        from .training.export import load_run_model

        return load_run_model(self.run_dir, self.checkpoint)

    def metrics(self) -> dict[str, Any]:
        """The run's metrics.json (``{}`` when missing or unreadable)."""
        try:
            m = json.loads((self.run_dir / "metrics.json").read_text())
        except (OSError, ValueError):
            return {}
        return m if isinstance(m, dict) else {}

    def temperature(self) -> float:
        """The temperature ``ferkit train`` fitted on validation, or 1 if the run has none."""
        try:
            t = float(self.metrics().get("temperature") or 1.0)
        except (TypeError, ValueError):
            return 1.0
        return t if t > 0 else 1.0

    def budget(self) -> str:
        """Training budget as stated by the run's metrics.json."""
        m = self.metrics()
        if not m:
            return "?"
        hw = str(m.get("hardware") or m.get("device") or "?").replace("NVIDIA ", "").replace(" 80GB HBM3", "")
        if m.get("device") == "cpu" or hw in ("", "x86_64", "cpu"):
            cfg = self.run_dir / "config.json"
            threads = m.get("cpu_threads") or (
                json.loads(cfg.read_text()).get("workers_threads") if cfg.exists() else 0)
            hw = f"CPU {threads} thread{'s' if threads != 1 else ''}" if threads else "CPU"
        wall = m.get("wall_s")
        mins = f"{wall / 60:.1f} min" if wall else "?"
        if "cluster_test_accuracy" in m:
            return f"AE {m.get('epochs_run')} ep + head on {m.get('train_images')} labels, {mins}, {hw}"
        return f"{m.get('epochs_run')} ep, {mins}, {hw}"


def catalogue(runs: str | Path = RUNS) -> list[Entry]:
    """Every known trained model whose files exist."""
    runs = Path(runs)
    out = []
    for name, folder in BASELINES:
        e = Entry(name, runs / folder / name, runs / folder / f"{name}.pt")
        if e.checkpoint.exists() and (e.run_dir / "config.json").exists():
            out.append(e)
    for name in RESEARCH:
        e = Entry(name, runs / "research" / name, runs / "research" / name / "best.pt")
        if e.checkpoint.exists() and (e.run_dir / "config.json").exists():
            out.append(e)
    return out


def distinct_names(entries: list[Entry]) -> list[Entry]:
    """Entries whose names collide (``a/mx`` and ``b/mx``) are named by as many parent folders as it takes."""
    out = list(entries)
    for depth in range(2, 6):
        names = [e.name for e in out]
        dup = {n for n in names if names.count(n) > 1}
        if not dup:
            break
        out = [Entry("/".join(e.run_dir.parts[-depth:]), e.run_dir, e.checkpoint) if e.name in dup else e
               for e in out]
    return out


def resolve(spec: str, runs: str | Path = RUNS) -> Entry:
    """A catalogue name, a run directory (``best.pt`` inside) or a checkpoint ``X.pt`` beside run dir ``X/``."""
    for e in catalogue(runs):
        if e.name == spec:
            return e
    p = Path(spec)
    if p.is_dir() and (p / "config.json").exists():
        return Entry(p.name, p, p / "best.pt")
    if p.suffix == ".pt" and p.is_file() and (p.parent / "config.json").exists():  # RUN/best.pt, as `train` writes
        return Entry(p.parent.name, p.parent, p)
    if p.suffix == ".pt" and p.with_suffix("").is_dir():
        return Entry(p.stem, p.with_suffix(""), p)
    if p.is_dir():  # a folder, but not a run: say what is missing (a k-fold parent names its folds)
        from .training.export import resolve_checkpoint

        resolve_checkpoint(p)
    names = ", ".join(e.name for e in catalogue(runs))
    shipped = " (shipped ONNX models and .onnx files are evaluated with `ferkit eval --model`)" \
        if spec in ("default", "fer2013") or str(spec).endswith(".onnx") else ""
    raise UnknownModelError(f"unknown model {spec!r}; known runs: {names or 'none in ' + str(runs)} (or a run "
                            f"directory / checkpoint path){shipped}")


def count_macs_full(model: nn.Module, size: int = 48, channels: int = 1) -> int:
    """Multiply-accumulates of one forward pass: convs, linear layers applied to every token, attention matmuls."""
    from .training.export import count_macs

    return count_macs(model, size, channels, attention=True)


def ort_session(path: str | Path, threads: int = 1) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_logits(sess: Any, images: np.ndarray, batch: int = 256, regions: list[str] | None = None) -> np.ndarray:
    """Logits of uint8 faces ``(n, 48, 48)``; models with a ``boxes`` input get boxes of ``regions`` placed by
    the face mesh on the faces (cached)."""
    from .face.regions import mesh_region_boxes

    x = images[:, None].astype(np.float32) / 255
    bx = mesh_region_boxes(images, regions) if len(sess.get_inputs()) > 1 and regions else None
    out = []
    for i in range(0, len(x), batch):
        feeds = {"input": x[i:i + batch]}
        if bx is not None:
            feeds["boxes"] = bx[i:i + batch]
        out.append(sess.run(None, feeds)[0])
    return np.concatenate(out)


def faces_per_second(sess: Any, batch: int = 64, seconds: float = 1.5, seed: int = 0) -> float:
    """Faces/s of a session at ``batch`` (best batch time over ``seconds``, after one warm-up run); a ``boxes``
    input gets template-like boxes (the mesh that places them runs in the pipeline anyway, not counted)."""
    rng = np.random.default_rng(seed)
    feeds = {"input": rng.random((batch, 1, 48, 48), dtype=np.float32)}
    if len(sess.get_inputs()) > 1:
        r = sess.get_inputs()[1].shape[1]
        feeds["boxes"] = (0.35 + 0.3 * rng.random((batch, r, 4))).astype(np.float32)
    sess.run(None, feeds)
    best, t_end, n = float("inf"), time.perf_counter() + seconds, 0
    while time.perf_counter() < t_end or n < 3:
        t = time.perf_counter()
        sess.run(None, feeds)
        best = min(best, time.perf_counter() - t)
        n += 1
    return batch / best


def occlusion_sample(labels: np.ndarray, n: int = 1000, seed: int = 0) -> np.ndarray:
    """Seeded sample of ``n`` scored faces of the split (the faces that get occluders)."""
    scored = np.flatnonzero(labels >= 0)
    return np.sort(np.random.default_rng(seed).choice(scored, min(n, len(scored)), replace=False))


def make_subsets(test_images: np.ndarray, test_labels: np.ndarray, mesh_cache: str | Path | None,
                 n_occ: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Subset definitions: occluded copies of a seeded sample, and pose subsets (indices) from the mesh."""
    from .face.regions import cached_mesh
    from .robustness import occlude, pose_subsets

    occ_idx = occlusion_sample(test_labels, n_occ, seed)
    subsets: dict[str, Any] = {"occ_clean": (occ_idx, test_images[occ_idx])}
    for k in ("eyes", "mouth", "random"):
        subsets[f"occ_{k}"] = (occ_idx, occlude(test_images[occ_idx], k, seed))
    if mesh_cache is not None:
        pts, pres = cached_mesh(test_images, mesh_cache)
        for name, sel in pose_subsets(pts, pres).items():
            subsets[name] = (sel, None)  # None: same images as the test split
    return subsets


def evaluate_entry(e: Entry, test_images: np.ndarray, val_images: np.ndarray, val_labels: np.ndarray,
                   subsets: dict[str, Any], cache: Path, speed: bool = True) -> dict[str, Any]:
    """Logits on test / val / occluded subsets, params, MACs and faces/s of one model (cached per model)."""
    import hashlib

    from .training.export import to_onnx

    model, cfg = e.load()
    # Cache files per checkpoint (its full path: two runs may share a folder name) and per subset sizes
    key = hashlib.sha1(os.fsencode(os.path.abspath(e.checkpoint))).hexdigest()[:10]
    sizes = "-".join(f"{k}{len(v[0])}" for k, v in sorted(subsets.items()))
    onnx_path = cache / "onnx" / f"{e.name}-{key}.onnx"
    if not onnx_path.exists() or onnx_path.stat().st_mtime < e.checkpoint.stat().st_mtime:
        to_onnx(model, onnx_path)
    sess = ort_session(onnx_path, 1)
    out: dict[str, Any] = {"name": e.name, "model": cfg["model"], "budget": e.budget(),
                           "params": int(sum(p.numel() for p in model.parameters())),
                           "macs": count_macs_full(model)}
    regions = list(model.backbone.region_names) if getattr(model, "wants_boxes", False) else None
    cpath = cache / "logits" / f"{e.name}-{key}-{hashlib.sha1(sizes.encode()).hexdigest()[:8]}.npz"
    if cpath.exists() and cpath.stat().st_mtime > onnx_path.stat().st_mtime:
        z = dict(np.load(cpath))
    else:
        z = {"test": ort_logits(sess, test_images, regions=regions)}
        vpath = e.run_dir / "val_logits.npy"
        v = np.load(vpath) if vpath.exists() else None
        z["val"] = (v if v is not None and len(v) == len(val_images)
                    else ort_logits(sess, val_images, regions=regions))
        for name, (_, imgs) in subsets.items():
            if imgs is not None and name != "occ_clean":
                z[name] = ort_logits(sess, imgs, regions=regions)
        cpath.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cpath, **z)
    out["logits"] = z
    out["temperature"] = fit_temperature(z["val"], val_labels)
    out["fps"] = faces_per_second(sess) if speed else float("nan")
    return out


def ensemble_probs(members: list[dict[str, Any]], key: str, weights: np.ndarray) -> np.ndarray:
    """Per-class validation-accuracy-weighted average of the members' temperature-scaled probabilities."""
    return class_weighted_average([softmax(m["logits"][key], m["temperature"]) for m in members], weights)


def compare(entries: list[Entry] | None = None, out_dir: str | Path = "docs/research",
            cache: str | Path = COMPARE_CACHE, speed: bool = True,
            mesh_cache: str | Path | None = MESH_CACHE, n_occ: int = 1000,
            log: Any = None) -> dict[str, Any]:
    """Evaluate ``entries`` (default: the whole catalogue) + their ensemble; write compare.{json,md,csv}."""
    from .errors import InputError, ModelError

    torch.set_num_threads(1)
    entries = catalogue() if entries is None else entries
    if not entries:
        raise ModelError(f"no trained models to compare (none in {RUNS}; give run directories with --models)")
    if n_occ < 1:
        raise InputError(f"--occlusion-faces must be at least 1, got {n_occ}")
    for e in entries:
        classes_of = json.loads((e.run_dir / "config.json").read_text()).get("data", "ferplus")
        if classes_of != "ferplus":
            raise InputError(f"{e.name}: compare scores FER+ 8-class runs; this one was trained on {classes_of}")
    out_dir, cache = Path(out_dir), Path(cache)
    out_dir.mkdir(parents=True, exist_ok=True)
    test, val = load_npz("test", "ferplus"), load_npz("val", "ferplus")
    classes = list(test.classes)
    subsets = make_subsets(test.images, test.labels, mesh_cache, n_occ)
    rows = []
    for e in entries:
        t = time.time()
        r = evaluate_entry(e, test.images, val.images, val.labels, subsets, cache, speed)
        rows.append(r)
        if log:
            log(f"{e.name}: {time.time() - t:.0f} s")
    if len(rows) > 1:  # ensemble of all models: weights = per-class validation top-1 of each member
        val_reps = [classification_report(val.labels, softmax(r["logits"]["val"], r["temperature"]), classes)
                    for r in rows]
        w = class_accuracy_weights([{c: v["top1"] for c, v in rep["per_class"].items()} for rep in val_reps],
                                   classes)
        keys = ["test", "val"] + [k for k, (_, imgs) in subsets.items() if imgs is not None and k != "occ_clean"]
        ens = {"name": "ensemble (all, val-acc weighted)", "model": "ensemble",
               "budget": f"{len(rows)} members", "params": sum(r["params"] for r in rows),
               "macs": sum(r["macs"] for r in rows), "temperature": 1.0,
               "fps": 1.0 / sum(1.0 / r["fps"] for r in rows) if speed else float("nan"),
               "logits": {k: np.log(ensemble_probs(rows, k, w).clip(1e-12)) for k in keys}}
        rows.append(ens)
    results = []
    for r in rows:
        p = softmax(r["logits"]["test"], r["temperature"])
        rep = classification_report(test.labels, p, classes)
        sub = {}
        for name, (idx, imgs) in subsets.items():
            if name == "occ_clean":
                pp, yy = p[idx], test.labels[idx]
            elif imgs is None:
                pp, yy = p[idx], test.labels[idx]
            else:
                pp, yy = softmax(r["logits"][name], r["temperature"]), test.labels[idx]
            m = yy >= 0
            sub[name] = float((pp[m].argmax(1) == yy[m]).mean())
        results.append({
            "name": r["name"], "model": r["model"], "budget": r["budget"], "params": r["params"], "macs": r["macs"],
            "faces_per_s": r["fps"], "temperature": r["temperature"], "accuracy": rep["accuracy"],
            "top2_accuracy": rep["top2_accuracy"], "mean_class_top1": rep["mean_class_top1"],
            "var_class_top1": rep["var_class_top1"], "mean_class_top2": rep["mean_class_top2"],
            "var_class_top2": rep["var_class_top2"], "macro_f1": rep["macro_f1"],
            "per_class_top1": {c: rep["per_class"][c]["top1"] for c in classes},
            "per_class_top2": {c: rep["per_class"][c]["top2"] for c in classes},
            "subsets": sub,
        })
    meta = {"test": "FER2013 PrivateTest, FER+ plurality labels", "n_test_scored": int((test.labels >= 0).sum()),
            "classes": classes, "speed": "onnxruntime CPU, 1 intra-op thread, batch 64, best of >= 1.5 s; ensemble = "
                                         "sequential sum of member latencies",
            "subset_sizes": {k: int((test.labels[idx] >= 0).sum()) for k, (idx, _) in subsets.items()}}
    doc = {"meta": meta, "results": results}
    (out_dir / "compare.json").write_text(json.dumps(doc, indent=1))
    (out_dir / "compare.md").write_text(markdown(doc))
    _write_csv(doc, out_dir / "compare.csv")
    return doc


def _best(vals: list[Any], higher: bool) -> set[int]:
    """Indices of the best value(s) of a column (missing values never win)."""
    ok = [(i, float(v)) for i, v in enumerate(vals) if v is not None and v == v]
    if not ok:
        return set()
    target = max(v for _, v in ok) if higher else min(v for _, v in ok)
    best = {i for i, v in ok if np.isclose(v, target, rtol=0, atol=1e-12)}
    return set() if len(best) == len(ok) > 1 else best  # all equal (e.g. every model 0 on a class): none is best


def _table(header: list[str], rows: list[list[Any]], fmts: list[str], higher: list[bool | None]) -> str:
    best = {j: _best([r[j] for r in rows], h) for j, h in enumerate(higher) if h is not None and len(rows) > 1}
    sep = "|" + "|".join("---" if j == 0 else "---:" for j in range(len(header))) + "|"
    lines = ["| " + " | ".join(header) + " |", sep]
    for i, r in enumerate(rows):
        cells = []
        for j, (v, f) in enumerate(zip(r, fmts)):
            s = v if isinstance(v, str) else ("–" if v is None or v != v else format(v, f))
            cells.append(f"**{s}**" if j in best and i in best[j] else s)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(doc: dict[str, Any]) -> str:
    """The comparison as markdown tables (best of each column in bold)."""
    res, classes = doc["results"], doc["meta"]["classes"]
    main = _table(
        ["model", "acc", "mean top-1", "var top-1", "top-2 acc", "mean top-2", "var top-2", "macro-F1", "params",
         "MMAC", "faces/s", "training budget"],
        [[r["name"], r["accuracy"], r["mean_class_top1"], r["var_class_top1"], r["top2_accuracy"],
          r["mean_class_top2"], r["var_class_top2"], r["macro_f1"], r["params"] / 1e6, r["macs"] / 1e6,
          r["faces_per_s"], r["budget"]] for r in res],
        ["s", ".4f", ".4f", ".4f", ".4f", ".4f", ".4f", ".4f", ".3f", ".1f", ".0f", "s"],
        [None, True, True, False, True, True, False, True, False, False, True, None])
    t1 = _table(["model", *classes], [[r["name"], *[r["per_class_top1"][c] for c in classes]] for r in res],
                ["s"] + [".3f"] * len(classes), [None] + [True] * len(classes))
    t2 = _table(["model", *classes], [[r["name"], *[r["per_class_top2"][c] for c in classes]] for r in res],
                ["s"] + [".3f"] * len(classes), [None] + [True] * len(classes))
    subs = list(res[0]["subsets"])
    sizes = doc["meta"]["subset_sizes"]
    t3 = _table(["model", *[f"{s} (n={sizes[s]})" for s in subs]],
                [[r["name"], *[r["subsets"][s] for s in subs]] for r in res],
                ["s"] + [".3f"] * len(subs), [None] + [True] * len(subs))
    return (f"Test split: {doc['meta']['test']} ({doc['meta']['n_test_scored']} scored faces). Params in millions, "
            f"MMAC = million multiply-accumulates per face (FLOPs ~ 2 x MAC). Speed: {doc['meta']['speed']}.\n\n"
            f"### Overall\n\n{main}\n\n### Per-class top-1\n\n{t1}\n\n### Per-class top-2\n\n{t2}\n\n"
            f"### Robustness subsets (accuracy)\n\n{t3}\n")


def _write_csv(doc: dict[str, Any], path: Path) -> None:
    import csv

    classes = doc["meta"]["classes"]
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        subs = list(doc["results"][0]["subsets"])
        wr.writerow(["model", "accuracy", "macro_f1", "mean_class_top1", "var_class_top1", "top2_accuracy",
                     "mean_class_top2", "var_class_top2", "params", "macs", "faces_per_s", "budget",
                     *[f"top1_{c}" for c in classes], *[f"top2_{c}" for c in classes], *subs])
        for r in doc["results"]:
            wr.writerow([r["name"], r["accuracy"], r.get("macro_f1"), r["mean_class_top1"], r["var_class_top1"],
                         r["top2_accuracy"], r["mean_class_top2"], r["var_class_top2"], r["params"], r["macs"],
                         r["faces_per_s"], r["budget"], *[r["per_class_top1"][c] for c in classes],
                         *[r["per_class_top2"][c] for c in classes], *[r["subsets"][s] for s in subs]])
