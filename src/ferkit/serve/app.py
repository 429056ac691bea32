"""The HTTP service: ``POST /v1/analyze`` (photo or short video upload -> rows as JSON), ``GET /healthz``,
the web page at ``/`` and the OpenAPI docs (``/docs``, ``/openapi.json``).

Safety rules: uploads are read into memory up to ``max_upload_bytes`` (413 beyond, checked on the raw body
before any parsing); the type comes from the content (415 for anything but an image or a video container),
never from the client's name or declared type; the client's file name is only echoed back (its last path
component, cleaned), never used as a path; a video goes to a server-named temporary file that is deleted after
the analysis. With a token set, every request needs ``Authorization: Bearer TOKEN`` (the page and the docs also
take ``?token=``, since a browser cannot send a header when it opens a page).
"""

from __future__ import annotations

import hmac
import io
import json
import os
import queue
import re
import shutil
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse

__all__ = ["ServeSettings", "create_app"]

TOKEN_ENV = "FERKIT_TOKEN"
#: First bytes of the common image formats (JPEG, PNG, GIF, BMP, TIFF).
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


@dataclass
class ServeSettings:
    """Limits and options of the service."""

    token: str | None = None
    max_upload_bytes: int = 25 * 1024 * 1024
    max_video_s: float = 30.0
    max_pixels: int = 30_000_000
    video_fps: float = 5.0
    analyzers: int = 1
    options: dict[str, Any] = field(default_factory=dict)


class _Pool:
    """``n`` (image analyzer, video analyzer) pairs; a request borrows one pair (analyzers are not thread-safe)."""

    def __init__(self, n: int, options: dict[str, Any], video_fps: float) -> None:
        self._q: queue.Queue[tuple[Any, Any]] = queue.Queue()
        self._made = 0
        self._n = max(1, n)
        self._lock = threading.Lock()
        self._options = options
        self._fps = video_fps
        self.classes: tuple[str, ...] = ()
        self.put(self._make())  # load now: a bad model fails at start-up

    def _make(self) -> tuple[Any, Any]:
        from ferkit.pipeline import Analyzer

        self._made += 1
        img = Analyzer(workers=1, **self._options)
        vid = Analyzer(workers=1, fps=self._fps, **self._options)
        self.classes = tuple(img.classes)
        return img, vid

    def put(self, pair: tuple[Any, Any]) -> None:
        self._q.put(pair)

    @contextmanager
    def borrow(self) -> Any:
        with self._lock:
            if self._q.empty() and self._made < self._n:
                self._q.put(self._make())
        pair = self._q.get()
        try:
            yield pair
        finally:
            self._q.put(pair)


class _TooLarge(Exception):
    pass


class _Guard:
    """ASGI middleware: bearer token on every request, and the upload size limit on the raw body."""

    def __init__(self, app: Any, settings: ServeSettings) -> None:
        self.app = app
        self.s = settings

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.s.token and not self._authorised(scope, headers):
            await _send_json(send, 401, {"detail": "missing or wrong bearer token"},
                             [(b"www-authenticate", b"Bearer")])
            return
        if scope.get("method") == "POST" and scope.get("path") == "/v1/analyze" \
                and not headers.get("content-type", "").lower().startswith("multipart/form-data"):
            await _send_json(send, 415, {"detail": "send the file as multipart/form-data (field 'file')"})
            return
        limit = self.s.max_upload_bytes + 64 * 1024  # the multipart envelope around the file
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            await _send_json(send, 413, {"detail": _too_large(self.s.max_upload_bytes)})
            return
        seen = 0
        started = False
        too_large = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal seen, too_large
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    too_large = True
                    raise _TooLarge
            return msg

        async def tracking_send(msg: dict[str, Any]) -> None:
            nonlocal started
            if too_large:  # the body parser turned the abort into its own error (e.g. 400): answer 413 instead
                if not started and msg["type"] == "http.response.start":
                    started = True
                    await _send_json(send, 413, {"detail": _too_large(self.s.max_upload_bytes)})
                return
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, {"detail": _too_large(self.s.max_upload_bytes)})

    def _authorised(self, scope: dict[str, Any], headers: dict[str, str]) -> bool:
        token = self.s.token or ""
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
            return True
        if scope.get("method") == "GET" and str(scope.get("path", "")).startswith(DOCS_STATIC + "/"):
            return True  # Swagger UI's own JS/CSS: public files, no data
        if scope.get("method") == "GET" and scope.get("path") in ("/", "/docs", "/openapi.json"):
            from urllib.parse import parse_qs, urlsplit

            q = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
            if hmac.compare_digest(q.encode(), token.encode()):
                return True
            if scope.get("path") == "/openapi.json":  # Swagger UI (opened as /docs?token=T) fetches it without
                ref = parse_qs(urlsplit(headers.get("referer", "")).query).get("token", [""])[0]
                return bool(ref) and hmac.compare_digest(ref.encode(), token.encode())
        return False


DOCS_STATIC = "/static-offline-docs"


def _too_large(limit: int) -> str:
    return f"upload too large: the limit is {limit / 1e6:.1f} MB"


async def _send_json(send: Any, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
                     ) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": data})


# ================================================================================================ helpers


def safe_name(name: str | None) -> str:
    """The client's file name reduced to a harmless label: last path component, printable, at most 100 chars."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^\w.\- ()]+", "_", base).strip(". ") or "upload"
    if len(base) <= 100:
        return base
    stem, dot, ext = base.rpartition(".")
    ext = ext[:10] if dot and stem else ""
    return base[: 100 - len(ext) - 1] + "." + ext if ext else base[:100]


def sniff(data: bytes) -> str | None:
    """``'image'``, ``'video'`` or ``None`` from the first bytes (the client's declared type is not trusted)."""
    head = data[:32]
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1"):
        return "image"  # AVIF / HEIF stills share the ISO box layout of MP4
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free") or head[:4] == b"\x1aE\xdf\xa3" \
            or (head[:4] == b"RIFF" and head[8:12] == b"AVI "):
        return "video"
    if head.startswith(IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"  # decoding errors (a truncated file) are then a clear 422
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return "image" if im.format else None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def _error(status: int, detail: str) -> Any:
    from fastapi import HTTPException

    return HTTPException(status_code=status, detail=detail)


# ================================================================================================ the app


def create_app(settings: ServeSettings | None = None) -> Any:
    """The FastAPI application (models are loaded here, once)."""
    import ferkit
    from ferkit.errors import FerkitError
    from ferkit.serve.page import PAGE

    s = settings or ServeSettings()
    if s.token is None:
        s.token = os.environ.get(TOKEN_ENV) or None
    pool = _Pool(s.analyzers, s.options, s.video_fps)
    try:  # Swagger UI's files from a package instead of a CDN, so /docs works offline.
        from fastapi_offline import FastAPIOffline as _App

        extra: dict[str, Any] = {"redoc_url": None}
    except ImportError:  # pragma: no cover - the [serve] extra installs it
        _App, extra = FastAPI, {}
    app = _App(title="ferkit", version=ferkit.__version__, **extra,
                  description="Facial expression recognition: upload a photo or a short video, get one row per face "
                              "per analysed frame. Send `Authorization: Bearer TOKEN` when the server has a token.")
    app.add_middleware(_Guard, settings=s)
    app.state.settings = s
    app.state.pool = pool
    base_openapi = app.openapi

    def openapi_with_bearer() -> dict[str, Any]:
        """The schema, with the bearer token declared (Swagger UI's "Authorize" then sends it)."""
        if app.openapi_schema is None:
            schema = base_openapi()
            schema.setdefault("components", {})["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi_with_bearer  # type: ignore[method-assign]

    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Any, exc: RequestValidationError) -> JSONResponse:
        """422 with what was wrong and where, never the request's own bytes (FastAPI echoes the input)."""
        keep = ("type", "loc", "msg")
        detail = []
        for e in exc.errors():
            item = {k: e[k] for k in keep if k in e}
            if tuple(item.get("loc", ()))[-1:] == ("file",) and item.get("type") != "missing":
                item["msg"] = "send the photo or video as a file: multipart/form-data with a file part named 'file'"
            detail.append(item)
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE

    @app.get("/healthz", summary="Liveness and model info")
    async def healthz() -> dict[str, Any]:  # on the event loop: answers while every worker thread is busy
        return {"status": "ok", "version": ferkit.__version__, "classes": list(pool.classes),
                "limits": {"max_upload_bytes": s.max_upload_bytes, "max_video_s": s.max_video_s,
                           "max_pixels": s.max_pixels}}

    async def one_file(request: Request) -> None:
        """One upload per request: a second 'file' part would otherwise be dropped without a word."""
        form = await request.form()  # (parsed once: FastAPI reads the same cached form)
        n = len(form.getlist("file"))
        if n > 1:
            raise _error(422, f"send one file per request ({n} 'file' parts were sent)")

    @app.post("/v1/analyze", summary="Analyse an uploaded photo or short video", dependencies=[Depends(one_file)],
              responses={400: {"description": "empty upload"}, 401: {"description": "missing or wrong token"},
                         413: {"description": "upload too large"}, 415: {"description": "not an image or video"},
                         422: {"description": "unreadable, too many pixels or too long"}})
    def analyze_upload(file: Annotated[UploadFile, File(description="the photo or video")],
                       fps: Annotated[float | None, Form(gt=0, le=30, description="video frames per second")] = None,
                       ) -> dict[str, Any]:
        data = file.file.read(s.max_upload_bytes + 1)
        if len(data) > s.max_upload_bytes:
            raise _error(413, _too_large(s.max_upload_bytes))
        if not data:
            raise _error(400, "empty upload")
        name = safe_name(file.filename)
        kind = sniff(data)
        if kind is None:
            raise _error(415, "unsupported media type: send a photo (JPEG, PNG, WebP...) or a video (MP4, MOV, WebM)")
        try:
            if kind == "image":
                return _analyze_image(data, name, s, pool)
            return _analyze_video(data, name, s, pool, fps)
        except FerkitError as exc:
            raise _error(422, _hide_paths(str(exc), name)) from None

    return app


def _analyze_image(data: bytes, name: str, s: ServeSettings, pool: _Pool) -> dict[str, Any]:
    from PIL import Image

    from ferkit.errors import InputError
    from ferkit.io import decode_image

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Exception as exc:  # noqa: BLE001 - a cut or corrupt header
        raise InputError(f"cannot read image {name}: {' '.join(str(exc).split())}") from None
    if w * h > s.max_pixels:
        raise _error(422, f"image too large: {w}x{h} pixels, the limit is {s.max_pixels / 1e6:.0f} megapixels")
    img = decode_image(data, "<upload>", max_pixels=None)
    with pool.borrow() as (az, _):
        res = az.analyze(img)
    return _response(res, name, "image", img.shape[1], img.shape[0], None)


def _analyze_video(data: bytes, name: str, s: ServeSettings, pool: _Pool, fps: float | None) -> dict[str, Any]:
    from ferkit.io import probe_video

    tmp = tempfile.mkdtemp(prefix="ferkit-upload-")
    try:
        path = os.path.join(tmp, "upload.video")  # a server-chosen name; nothing from the client
        with open(path, "wb") as fh:
            fh.write(data)
        info = probe_video(path)
        if info.width * info.height > s.max_pixels:
            raise _error(422, f"video frames too large: {info.width}x{info.height} pixels")
        if not info.duration_s or info.duration_s > s.max_video_s:
            raise _error(422, f"video too long: {info.duration_s:.1f} s, the limit is {s.max_video_s:.0f} s"
                         if info.duration_s else "video of unknown duration")
        with pool.borrow() as (img_az, vid_az):
            if fps is not None and abs(fps - s.video_fps) > 1e-9:
                from ferkit.pipeline import Analyzer

                with Analyzer(workers=1, fps=fps, **s.options) as az:
                    res = az.analyze(path)
            else:
                res = vid_az.analyze(path)
        return _response(res, name, "video", info.width, info.height, info.duration_s)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _hide_paths(text: str, name: str) -> str:
    """The client's file name instead of the server's temporary path (or ``<upload>``) in a message."""
    import re

    text = re.sub(r"\S*ferkit-upload-[^/\s]*/upload\.video", name, text)
    return text.replace("<upload>", name).replace("upload.video", name)


def _response(res: Any, name: str, kind: str, width: int, height: int, duration: float | None) -> dict[str, Any]:
    rows = res.to_records()
    for r in rows:
        r["source"] = name
        for k, v in r.items():
            if isinstance(v, float) and v != v:
                r[k] = None  # NaN (no detector score for a face crop) is not JSON
    st = res.statuses[0] if res.statuses else None
    status = {"status": st.status if st else "ok", "reason": (st.reason or None) if st else None,
              "frames": st.frames if st else 0, "faces": st.faces if st else len(rows)}
    if status["reason"]:
        status["reason"] = _hide_paths(status["reason"], name)
    return {"filename": name, "kind": kind, "width": width, "height": height, "duration_s": duration,
            "classes": list(res.classes), "status": status, "rows": rows}
