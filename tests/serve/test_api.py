"""The HTTP API: results, limits, bad requests, token."""

from __future__ import annotations

import io
import os
import tempfile

import numpy as np
import pytest
from PIL import Image

from .conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _post(client, data: bytes, name: str = "photo.jpg", ctype: str = "image/jpeg", **kw):
    return client.post("/v1/analyze", files={"file": (name, data, ctype)}, headers=AUTH, **kw)


def test_healthz_and_token(client):
    assert client.get("/healthz").status_code == 401
    assert client.get("/healthz", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.get("/healthz", headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "ok" and "happy" in r.json()["classes"]
    assert client.get("/openapi.json").status_code == 401
    spec = client.get("/openapi.json", headers=AUTH).json()
    assert "/v1/analyze" in spec["paths"]
    assert client.get("/").status_code == 401
    page = client.get(f"/?token={TOKEN}")
    assert page.status_code == 200 and "<script>" in page.text and "http" not in page.text.split("<script>")[1][:0]


def test_page_is_self_contained(client):
    html = client.get("/", headers=AUTH).text
    assert "src=\"http" not in html and "href=\"http" not in html and "cdn" not in html.lower()


def test_analyze_photo(client, samples):
    r = _post(client, (samples / "multi_face.jpg").read_bytes(), "multi_face.jpg")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "image" and body["width"] == 1000 and body["status"]["faces"] == 5
    row = body["rows"][0]
    for col in ("source", "frame", "time_s", "face_id", "x", "y", "w", "h", "det_score", "emotion", "sentiment",
                "angry", "contempt"):
        assert col in row
    assert row["source"] == "multi_face.jpg"
    no = _post(client, (samples / "free-mountain-vector-01.jpg").read_bytes())
    assert no.status_code == 200 and no.json()["rows"] == [] and no.json()["status"]["status"] == "no_face"


def test_analyze_video(client, samples):
    r = _post(client, (samples / "single_face.mp4").read_bytes(), "clip.mp4", "video/mp4")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "video" and body["duration_s"] > 1
    times = sorted({row["time_s"] for row in body["rows"]})
    assert len(times) >= 8 and times[1] - times[0] > 0.15  # ~5 analysed frames per second


def test_bad_requests(client, app, samples):
    assert client.post("/v1/analyze", headers=AUTH).status_code == 415  # empty body, no content type
    r = client.post("/v1/analyze", headers={**AUTH, "Content-Type": "multipart/form-data; boundary=xyz"}, content=b"")
    assert r.status_code in (400, 422) and r.json()["detail"]  # empty multipart body: no file
    r = client.post("/v1/analyze", headers=AUTH, files={"other": ("a.jpg", b"x", "image/jpeg")})
    assert r.status_code == 422  # no 'file' field
    r = _post(client, b"")
    assert r.status_code == 400 and "empty" in r.json()["detail"]
    r = _post(client, (samples / "single_face.jpg").read_bytes()[:4000])
    assert r.status_code == 422 and "photo.jpg" in r.json()["detail"]
    r = _post(client, b"hello, this is text", "notes.txt", "text/plain")
    assert r.status_code == 415
    r = client.post("/v1/analyze", headers={**AUTH, "Content-Type": "application/json"}, content=b'{"a": 1}')
    assert r.status_code == 415
    r = client.post("/v1/analyze", headers={**AUTH, "Content-Type": "image/jpeg"},
                    content=(samples / "single_face.jpg").read_bytes())
    assert r.status_code == 415
    r = _post(client, os.urandom(3_200_000))
    assert r.status_code == 413 and "too large" in r.json()["detail"]
    buf = io.BytesIO()
    Image.fromarray(np.zeros((1800, 2400, 3), np.uint8)).save(buf, "PNG")  # 4.3 MP, a few KB
    r = _post(client, buf.getvalue(), "big.png", "image/png")
    assert r.status_code == 422 and "pixels" in r.json()["detail"]
    s = app.state.settings
    old, s.max_video_s = s.max_video_s, 1.0
    try:
        r = _post(client, (samples / "single_face.mp4").read_bytes(), "clip.mp4", "video/mp4")
    finally:
        s.max_video_s = old
    assert r.status_code == 422 and "too long" in r.json()["detail"]
    r = client.post("/v1/analyze", files={"file": ("a.jpg", b"x", "image/jpeg")})
    assert r.status_code == 401  # the token is checked first


def test_path_like_file_name_is_only_a_label(client, samples, tmp_path):
    before = set(os.listdir(tempfile.gettempdir()))
    r = _post(client, (samples / "single_face.jpg").read_bytes(), "../../../tmp/evil/..\\x.jpg")
    assert r.status_code == 200
    assert r.json()["filename"] == "x.jpg" and r.json()["rows"][0]["source"] == "x.jpg"
    assert not os.path.exists("/tmp/evil")
    r = _post(client, (samples / "single_face.mp4").read_bytes(), "/etc/passwd", "video/mp4")
    assert r.status_code == 200 and r.json()["filename"] == "passwd"
    assert {n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith("ferkit-upload")} == set()


def test_docs_work_offline(client):
    html = client.get(f"/docs?token={TOKEN}").text
    assert "cdn." not in html and "/static-offline-docs/swagger-ui-bundle.js" in html
    js = client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    # Swagger UI opened with ?token= fetches the schema without it (the page is its referer), and can send the token
    assert client.get("/openapi.json", headers={"Referer": "http://x/docs?token=wrong"}).status_code == 401
    spec = client.get("/openapi.json", headers={"Referer": f"http://x/docs?token={TOKEN}"})
    assert spec.status_code == 200 and spec.json()["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_video_errors_name_the_upload_not_server_paths(client, samples):
    data = (samples / "face_noface.mov").read_bytes()
    r = _post(client, data[: len(data) // 3], "clip.mov", "video/quicktime")
    assert r.status_code in (200, 422)
    text = r.text
    assert "ferkit-upload-" not in text and "upload.video" not in text and "/tmp" not in text


def test_avif_and_heif_are_photos():
    from ferkit.serve.app import sniff

    assert sniff(b"\x00\x00\x00\x1cftypavif" + b"\x00" * 20) == "image"
    assert sniff(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 20) == "image"
    assert sniff(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 20) == "video"


def test_validation_errors_do_not_echo_the_upload(client):
    secret = b"SECRET-BYTES-" * 50
    r = client.post("/v1/analyze", headers=AUTH, files={"file": (None, secret)})  # a part without a file name
    assert r.status_code == 422 and b"SECRET-BYTES" not in r.content and r.json()["detail"][0]["loc"]
    assert "multipart/form-data with a file part named 'file'" in r.json()["detail"][0]["msg"]  # not pydantic's


def test_long_upload_names_keep_their_extension():
    from ferkit.serve.app import safe_name

    name = safe_name("a" * 240 + ".jpg")
    assert len(name) == 100 and name.endswith(".jpg")


def test_chunked_upload_over_the_limit_is_413(client):
    """Without a Content-Length, the size is counted as the body streams in: still a 413, not a parse error."""
    boundary = "xyzzy"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"n.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + os.urandom(3_500_000) + f"\r\n--{boundary}--\r\n".encode()

    def chunks():
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    r = client.post("/v1/analyze", headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
                    content=chunks())
    assert r.status_code == 413 and "too large" in r.json()["detail"]


def test_serve_port_errors_are_clean(capsys):
    import socket

    from ferkit.cli import main

    with pytest.raises(SystemExit) as e:
        main(["serve", "--port", "99999"])
    assert e.value.code == 2 and "expected a port number 0-65535" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert f"cannot serve on 127.0.0.1:{port}" in capsys.readouterr().err


def test_two_files_in_one_request_are_refused(client, samples):
    data = (samples / "single_face.jpg").read_bytes()
    r = client.post("/v1/analyze", headers=AUTH, files=[("file", ("a.jpg", data, "image/jpeg")),
                                                       ("file", ("b.jpg", data, "image/jpeg"))])
    assert r.status_code == 422 and "one file per request (2 'file' parts" in r.json()["detail"]
    assert _post(client, data).status_code == 200  # one file: as before


@pytest.mark.parametrize(("sig", "code", "word"), [("SIGTERM", 143, "terminated"), ("SIGINT", 130, "interrupted")])
def test_serve_stopped_by_a_signal_says_so(sig, code, word):
    """A graceful shutdown by `kill` or Ctrl-C ends with 143 / 130, as every other command does (not 0)."""
    import selectors
    import signal
    import subprocess
    import sys
    import time

    # (SIG_DFL in the child: a shell's background job would inherit SIGINT ignored, as from this test runner)
    proc = subprocess.Popen([sys.executable, "-m", "ferkit", "serve", "--port", "0"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        fd = proc.stderr.fileno()  # read the pipe itself (no buffered reader that could hold lines select misses)
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        seen, deadline = b"", time.time() + 60
        while b"Uvicorn running" not in seen and proc.poll() is None and time.time() < deadline:
            if sel.select(timeout=1):  # (never blocks past the deadline on a silent child)
                seen += os.read(fd, 65536)
        assert b"Uvicorn running" in seen, seen
        proc.send_signal(getattr(signal, sig))
        rest = proc.communicate(timeout=30)[1].decode(errors="replace")
    finally:
        proc.kill()
    assert proc.returncode == code and f"ferkit: {word}" in rest


def test_serve_that_cannot_start_is_an_error(monkeypatch, capsys):
    """uvicorn exits (3) when it cannot start after the port check passed: a ferkit error, exit 2."""
    import uvicorn

    from ferkit.cli import main

    def fail(self, sockets=None):
        raise SystemExit(3)

    monkeypatch.setattr(uvicorn.Server, "run", fail)
    assert main(["serve", "--port", "0"]) == 2
    assert "ferkit: error: the server on 127.0.0.1:0 did not start" in capsys.readouterr().err
