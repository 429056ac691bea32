"""Fixtures of the service tests: the app (in-process client) and a live uvicorn server on loopback."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the [serve] extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx is not installed")

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "samples"
TOKEN = "s3cret-token"


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"sample media not found at {SAMPLES}")
    return SAMPLES


@pytest.fixture(scope="session")
def app(samples):
    from ferkit.serve import ServeSettings, create_app

    return create_app(ServeSettings(token=TOKEN, max_upload_bytes=3_000_000, max_video_s=20.0,
                                   max_pixels=4_000_000, analyzers=2))


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def live_server(app):
    """Base URL of the app served by uvicorn on 127.0.0.1 (a free port), in a thread."""
    uvicorn = pytest.importorskip("uvicorn")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    t.join(timeout=10)
