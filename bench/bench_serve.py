"""Load test of ``ferkit serve`` on loopback: N requests (a 512 px photo) from C concurrent clients; reports
errors, p50 / p95 / max latency and requests/s. Writes bench/results/serve.{json,md}.

    PYTHONPATH=src .venv/bin/python bench/bench_serve.py [--requests 200] [--clients 8] [--analyzers 2]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    from ferkit.serve import ServeSettings, create_app
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))
    from ferkit.serve import ServeSettings, create_app

SAMPLE = ROOT.parent / "shared" / "data" / "samples" / "0-f1-su-ph.jpg"


def main() -> int:
    import httpx
    import uvicorn

    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--analyzers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300, help="give up after this many seconds in all")
    args = ap.parse_args()
    app = create_app(ServeSettings(analyzers=args.analyzers))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    for _ in range(600):
        if server.started:
            break
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    data = SAMPLE.read_bytes()
    local = threading.local()

    def one(_: int) -> tuple[int, float]:
        c = getattr(local, "c", None)
        if c is None:
            c = local.c = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120, trust_env=False)
        t0 = time.perf_counter()
        try:
            r = c.post("/v1/analyze", files={"file": ("p.jpg", data, "image/jpeg")})
            code = r.status_code
        except httpx.HTTPError:
            code = -1
        return code, time.perf_counter() - t0

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as c:  # warm-up (loads analyzers)
        for _ in range(args.analyzers):
            c.post("/v1/analyze", files={"file": ("p.jpg", data, "image/jpeg")}, timeout=120)
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(args.clients) as ex:
        results = list(ex.map(one, range(args.requests), timeout=args.timeout))
    wall = time.perf_counter() - t0
    server.should_exit = True
    th.join(timeout=10)
    lat = sorted(t for _, t in results)
    errors = sum(code != 200 for code, _ in results)

    def pct(p: float) -> float:
        return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 1)

    res = {"requests": args.requests, "clients": args.clients, "analyzers": args.analyzers, "errors": errors,
           "p50_ms": pct(0.5), "p95_ms": pct(0.95), "max_ms": round(1000 * lat[-1], 1),
           "req_per_s": round(args.requests / wall, 2), "cpu_count": os.cpu_count(), "image": SAMPLE.name}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve.json").write_text(json.dumps(res, indent=1) + "\n")
    md = ["# ferkit serve: load test on loopback", "",
          f"{args.requests} POST /v1/analyze ({SAMPLE.name}, 512x512, one face) from {args.clients} concurrent "
          f"clients, {args.analyzers} analyzers, {os.cpu_count()} shared CPU cores. "
          "Command: `PYTHONPATH=src .venv/bin/python bench/bench_serve.py`", "",
          "| errors | p50 ms | p95 ms | max ms | requests/s |", "|---|---|---|---|---|",
          f"| {errors} | {res['p50_ms']} | {res['p95_ms']} | {res['max_ms']} | {res['req_per_s']} |"]
    (out / "serve.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
