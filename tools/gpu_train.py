"""Run several training configs side by side on one GPU machine (the `device` tool) and pack the results.

    python3 tools/gpu_train.py tools/gpu_plans/ferplus1.json --minutes 8 --out $OUT

Each plan entry is {"name": ..., "config": {TrainConfig keys}}. Runs share the GPU; each gets the same
deadline. Results: $OUT/runs_meta.tar.gz (config, log, metrics, val logits of every run) and the best
checkpoints in fp16, tarred and split into 15 MB parts ($OUT/ckpt.tar.part-*).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pick_teachers(spec: str) -> list[str]:
    """``"top:K:GLOB"``: the K finished run directories matching GLOB with the best validation accuracy
    (a plan can name teachers trained by an earlier call on the same, still warm, machine)."""
    import glob

    _, k, pattern = spec.split(":", 2)
    runs = [Path(d) for d in glob.glob(pattern) if (Path(d) / "metrics.json").exists()]
    if not runs:
        raise SystemExit(f"no finished teacher runs match {pattern}")
    acc = {d: json.loads((d / "metrics.json").read_text())["val"]["accuracy"] for d in runs}
    return [str(d) for d in sorted(runs, key=lambda d: -acc[d])[: int(k)]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("plan")
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp/gpu_out"))
    ap.add_argument("--runs", default="/tmp/ferkit_runs")
    ap.add_argument("--pack-mb", type=float, default=60.0, help="budget for returned checkpoints")
    args = ap.parse_args()
    t0 = time.time()
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    data = Path("/tmp/ferdata")
    subprocess.run(
        [sys.executable, str(ROOT / "tools/gpu_unpack_data.py"), str(ROOT / ".carry"), str(data)], check=True
    )
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT / "src"),
        FERKIT_DATA=str(data),
        OMP_NUM_THREADS="2",
        FERKIT_EFFNET_WEIGHTS=str(ROOT / ".carry/efficientnet-lite0.pth"),
    )
    plan = json.loads(Path(args.plan).read_text())
    procs = {}
    budget = args.minutes - (time.time() - t0) / 60
    for entry in plan:
        cfg = dict(entry["config"])
        if isinstance(cfg.get("teachers"), str):
            cfg["teachers"] = pick_teachers(cfg["teachers"])
            print(f"{entry['name']}: teachers {cfg['teachers']}", flush=True)
        cfg.setdefault("deadline_min", budget - 0.6)
        d = runs / entry["name"]
        d.mkdir(exist_ok=True)
        (d / "plan_config.json").write_text(json.dumps(cfg))
        cmd = [
            sys.executable,
            "-m",
            "ferkit",
            "train",
            "--config",
            str(d / "plan_config.json"),
            "-o",
            str(d),
            "--quiet",
        ]
        procs[entry["name"]] = subprocess.Popen(
            cmd, env=env, stdout=open(d / "stdout.txt", "w"), stderr=open(d / "stderr.txt", "w")
        )
    last_report = 0.0
    while any(p.poll() is None for p in procs.values()):
        if time.time() - t0 > args.minutes * 60:
            for name, p in procs.items():
                if p.poll() is None:
                    print(f"killing {name} at the deadline", flush=True)
                    p.kill()
            break
        if time.time() - last_report > 60:
            last_report = time.time()
            for name in procs:
                log = runs / name / "log.jsonl"
                tail = log.read_text().strip().splitlines()[-1] if log.exists() and log.stat().st_size else "-"
                print(f"[{(time.time() - t0) / 60:.1f} min] {name}: {tail}", flush=True)
        time.sleep(5)
    subprocess.run("nvidia-smi || true", shell=True, stdout=open(runs / "nvidia-smi.txt", "w"))
    import shutil

    import torch

    ck_dir = Path("/tmp/ferkit_ckpt")
    shutil.rmtree(ck_dir, ignore_errors=True)
    ck_dir.mkdir()
    with tarfile.open(out / "runs_meta.tar.gz", "w:gz") as tar:
        for name in procs:
            d = runs / name
            for f in ("config.json", "log.jsonl", "metrics.json", "val_logits.npy", "stdout.txt", "stderr.txt"):
                if (d / f).exists():
                    tar.add(d / f, arcname=f"{name}/{f}")
        tar.add(runs / "nvidia-smi.txt", arcname="nvidia-smi.txt")
    # Checkpoints within the transfer budget: per "group", best validation accuracy first.
    cands = []
    for entry in plan:
        d = runs / entry["name"]
        if (d / "best.pt").exists():
            ck = torch.load(d / "best.pt", map_location="cpu", weights_only=False)
            cands.append(
                (entry.get("priority", 0), -ck["val_acc"], entry["name"], ck, entry.get("group", entry["name"]))
            )
    used, groups = 0.0, set()
    for _, neg_acc, name, ck, group in sorted(cands, key=lambda c: (c[0], c[1])):
        if group in groups:
            print(f"not packed (a better one of group {group} was): {name} val_acc={-neg_acc:.4f}")
            continue
        groups.add(group)
        sd = {k: (v.half() if v.is_floating_point() else v) for k, v in ck["model"].items()}
        mb = sum(v.numel() * v.element_size() for v in sd.values()) / 1e6
        if used + mb > args.pack_mb:
            print(f"not packed (budget): {name} val_acc={-neg_acc:.4f} {mb:.1f} MB")
            continue
        used += mb
        torch.save({"model": sd, "epoch": ck["epoch"], "val_acc": ck["val_acc"]}, ck_dir / f"{name}.pt")
    if any(ck_dir.glob("*.pt")):  # (--pack-mb 0: an intermediate call of a chain returns logs only)
        subprocess.run(f"cd {ck_dir} && tar cf - *.pt | split -b 15m - {out}/ckpt.tar.part-", shell=True, check=True)
    for name, p in procs.items():
        m = runs / name / "metrics.json"
        acc = json.loads(m.read_text())["val"]["accuracy"] if m.exists() else None
        print(f"{name}: rc={p.returncode} val_acc={acc}")
    print(f"total {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
