"""A bounded load test on loopback: concurrent clients, no errors (the full 200-request run is bench/)."""

from __future__ import annotations

import concurrent.futures as cf
import time

import httpx

from .conftest import TOKEN


def test_concurrent_requests(live_server, samples):
    data = (samples / "0-f1-su-ph.jpg").read_bytes()
    n, clients = 24, 8

    def one(_: int) -> tuple[int, float]:
        t0 = time.perf_counter()
        with httpx.Client(base_url=live_server, timeout=60, trust_env=False) as c:
            r = c.post("/v1/analyze", files={"file": ("f.jpg", data, "image/jpeg")},
                       headers={"Authorization": f"Bearer {TOKEN}"})
        return r.status_code, time.perf_counter() - t0

    with cf.ThreadPoolExecutor(clients) as ex:
        results = list(ex.map(one, range(n), timeout=120))
    assert [s for s, _ in results] == [200] * n
    lat = sorted(t for _, t in results)
    assert lat[len(lat) // 2] < 30
