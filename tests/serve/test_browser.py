"""End to end in a real headless browser (Debian chromium driven by Playwright; no browser download)."""

from __future__ import annotations

import os
import shutil

import pytest

from .conftest import TOKEN

CHROMIUM = "/usr/bin/chromium"


def test_upload_photo_through_the_page(live_server, samples, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python package) not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            external: list[str] = []
            page.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "blob:", "data:"))
                    else external.append(r.url))
            page.goto(f"{live_server}/?token={TOKEN}")
            page.set_input_files("#file", str(samples / "multi_face.jpg"))
            page.wait_for_selector(".face-label", timeout=60_000)
            labels = page.locator(".face-label").all_inner_texts()
            status = page.locator("#status").inner_text()
            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=True)
            keep = os.environ.get("FERKIT_TEST_ARTEFACTS")
            if keep:
                os.makedirs(keep, exist_ok=True)
                shutil.copy(shot, os.path.join(keep, "serve_page.png"))
        finally:
            browser.close()
    assert len(labels) == 5 and "5 faces" in status
    classes = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")
    assert all(any(c in lab for c in classes) and "%" in lab for lab in labels)
    assert shot.stat().st_size > 10_000
    assert external == []
