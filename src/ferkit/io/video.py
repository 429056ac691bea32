"""Stream video frames (and animated GIF / WebP / PNG) as BGR ``uint8`` arrays with exact timestamps.

Backends, tried in this order by ``backend="auto"``:

* ``"pillow"`` for image files: animated GIF / WebP / APNG (frame times from the per-frame
  durations; 0 or <= 10 ms durations count as 100 ms, like browsers) and still images (one frame).
* ``"pyav"`` (FFmpeg through PyAV) for everything else: multithreaded decoding, presentation times
  from the container's timestamps, ``yuv420p`` frames converted with OpenCV's I420 conversion
  (BT.601 limited range, like ``cv2.VideoCapture``; about 2x faster than asking FFmpeg for BGR),
  other pixel formats (odd sizes, full range, 10-bit, 4:2:2, RGB...) converted by FFmpeg.
  The display-matrix rotation of phone videos is applied (``autorotate=True``).
* ``"opencv"`` (``cv2.VideoCapture``) when PyAV cannot open the file.

Memory is bounded whatever the length: frames are decoded one at a time and only the frames kept
are converted to BGR.

A file that cannot be opened raises :class:`~ferkit.errors.InputError` at once. A file that breaks
later (truncated download, corrupt data) does not raise: iteration stops cleanly after the last good
frame and the :class:`FrameStream` tells how far it got (``complete``, ``stopped_at_s``, ``error``,
``summary()``), so a caller can report "analysed up to 12.0 s of 19.7 s: ...". Pass
``strict=True`` to get an ``InputError`` at that point instead.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

import cv2
import numpy as np

from ferkit.errors import InputError
from ferkit.io._files import PathLike, check_input_file, one_line
from ferkit.io.images import DEFAULT_BACKGROUND, DEFAULT_MAX_DECODE_PIXELS, _pil_open, _pil_to_bgr, load_image
from ferkit.io.media import ANIMATABLE_EXTENSIONS, IMAGE_EXTENSIONS

logger = logging.getLogger(__name__)

Backend = Literal["auto", "pyav", "opencv", "pillow"]

_EPS = 1e-6
# Packets in a row that cannot be decoded before any frame was: not a video we can read. Once a frame has been decoded,
# damaged stretches of any length are skipped (and counted) as long as the demuxer gives packets.
_MAX_CONSECUTIVE_DECODE_ERRORS = 25


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame.

    ``index`` is the frame number in the video (0-based, counted from the first frame; after a
    seek to ``start`` it is derived from the timestamp, exact for constant frame rates).
    ``time_s`` is the presentation time in seconds from the start of the video, from the
    container's timestamps. ``image`` is BGR ``uint8`` (H, W, 3), C-contiguous.
    """

    index: int
    time_s: float
    image: np.ndarray


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (``width`` / ``height`` after rotation).

    ``fps`` is the average frame rate (0.0 if unknown); ``n_frames`` is an estimate (the
    container's count, or duration x fps); ``duration_s`` is 0.0 when unknown. ``vfr``: the frame
    rate varies (the average differs from the stream's base rate), so ``time x fps`` is not a frame
    number.
    """

    path: str
    width: int
    height: int
    fps: float
    n_frames: int
    duration_s: float
    codec: str
    backend: str
    rotation: int = 0
    vfr: bool = False


class _OpenError(Exception):
    """A backend could not open the file (internal)."""


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
def probe_video(path: PathLike, *, backend: Backend = "auto") -> VideoInfo:
    """Read a video's size, frame rate, frame count (estimate), duration and codec.

    The first frame is decoded too, so a file that this returns for can be decoded.

    Raises:
        InputError: missing / empty file, or not a video any backend can open.
    """
    p = check_input_file(path, "video")
    b = _open_backend(p, backend, autorotate=True)
    try:
        return b.info
    finally:
        b.close()


def iter_frames(path: PathLike, every: int = 1, fps: float | None = None, start: float | None = None,
                end: float | None = None, *, backend: Backend = "auto", autorotate: bool = True,
                strict: bool = False) -> FrameStream:
    """Iterate over the frames of a video (or animated image) as :class:`Frame` objects.

    Args:
        path: video file (mp4, mov, avi, mkv, webm, m4v, animated gif / webp / png, or anything
            FFmpeg opens). A still image gives one frame.
        every: keep every Nth frame (the first frame in range, then N, 2N... frames later).
        fps: instead of ``every``, keep the frames closest to a regular grid of ``fps`` points per
            second starting at ``start`` (or 0), using the timestamps (variable frame rates are
            handled; a frame is never repeated when ``fps`` exceeds the video's rate).
        start: first time to read, in seconds (PyAV seeks to the key frame before it).
        end: stop before this time, in seconds.
        backend: ``"auto"``, ``"pyav"``, ``"opencv"`` or ``"pillow"``.
        autorotate: apply the rotation stored by phones (display matrix).
        strict: raise :class:`InputError` when the video stops early, instead of ending quietly.

    Returns:
        A :class:`FrameStream`: an iterator of frames that also reports how far decoding got.
        Use it in a ``with`` block (or call ``close()``) when you may stop early.

    Raises:
        InputError: the file cannot be opened as a video (raised by this call, not mid-way).
        ValueError: bad arguments (``every`` < 1, ``fps`` <= 0, ``end`` <= ``start``...).
    """
    return FrameStream(path, every=every, fps=fps, start=start, end=end, backend=backend,
                       autorotate=autorotate, strict=strict)


class FrameStream(Iterator[Frame]):
    """Iterator of :class:`Frame` returned by :func:`iter_frames`, with decoding status.

    Attributes (final once iteration has ended, ``finished`` is then True):
        info: :class:`VideoInfo` of the file.
        frames_decoded: frames decoded inside ``[start, end)``.
        frames_yielded: frames handed out.
        complete: True when the whole requested range was read.
        stopped_at_s: time up to which the video was read: end time of the last decoded frame
            (the place to resume from), ``None`` before the first frame.
        error: why reading stopped early (``None`` when complete).
        decode_errors: packets that could not be decoded and were skipped.
        frames_lost: frames of the range that could not be decoded (damaged packets skipped). Frame numbers count
            decoded frames, so after a damaged stretch they run behind the file's own (``time_s`` stays exact).
    """

    def __init__(self, path: PathLike, *, every: int = 1, fps: float | None = None, start: float | None = None,
                 end: float | None = None, backend: Backend = "auto", autorotate: bool = True,
                 strict: bool = False, grid: tuple[float, int, int | None] | None = None) -> None:
        if int(every) != every or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        if fps is not None and every != 1:
            raise ValueError("give either every= or fps=, not both")
        if start is not None and (start < 0 or not math.isfinite(start)):
            raise ValueError(f"start must be a time >= 0 in seconds, got {start!r}")
        if end is not None and (math.isnan(end) or end <= (start or 0.0)):
            raise ValueError(f"end must be after start, got start={start!r}, end={end!r}")
        self.path = check_input_file(path, "video")
        self._every = int(every)
        self._fps = float(fps) if fps is not None else None
        self._start = float(start) if start else None
        self._end = float(end) if end is not None and math.isfinite(end) else None
        self._strict = strict
        # (origin, k0, k1): with fps, emit only grid points origin + k / fps for k0 <= k < k1, choosing among the
        # frames decoded in [start, end) (a part of a longer pass: the decoded range reaches past both ends, so
        # the frames on either side of every grid point are seen, as in one pass)
        self._grid = grid
        self._backend = _open_backend(self.path, backend, autorotate)
        self.info: VideoInfo = self._backend.info
        self.frames_decoded = 0
        self.frames_yielded = 0
        self.complete = False
        self.finished = False
        self.stopped_at_s: float | None = None
        self.error: str | None = None
        self._gen = self._run()

    # -- iterator protocol ----------------------------------------------------------------
    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Frame:
        return next(self._gen)

    def close(self) -> None:
        """Stop decoding and release the file (safe to call more than once)."""
        self._gen.close()
        self._backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def decode_errors(self) -> int:
        return self._backend.decode_errors

    @property
    def frames_lost(self) -> int:
        """Frames of ``[start, end)`` that could not be decoded (damaged packets skipped). A range decoded from the
        key frame before its start does not count the errors before it, so ranges of one video add up."""
        times = getattr(self._backend, "decode_error_times", None)
        if times is None:
            return self._backend.decode_errors
        start, end = self._start or 0.0, self._end
        return sum(1 for t in times if t is None or (t >= start - _EPS and (end is None or t < end - _EPS)))

    @property
    def expected_end_s(self) -> float | None:
        """End of the requested range: ``end`` or the container's duration (``None`` if unknown)."""
        d = self.info.duration_s if self.info.duration_s > 0 else None
        if self._end is not None:
            return min(self._end, d) if d is not None else self._end
        return d

    def summary(self) -> str:
        """One line for users, e.g. ``clip.mp4: analysed up to 12.0 s of 19.7 s: file ends early ...``."""
        name = self.path.name
        total = self.expected_end_s
        of = f" of {total:.1f} s" if total is not None else ""
        if not self.finished:
            at = self.stopped_at_s or 0.0
            return f"{name}: reading, at {at:.1f} s{of} ({self.frames_decoded} frames)"
        if self.complete:
            extra = f", {self.frames_lost} damaged frames skipped" if self.frames_lost else ""
            return (f"{name}: read {self.frames_decoded} frames up to {self.stopped_at_s or 0.0:.1f} s{of}"
                    f" ({self.frames_yielded} kept{extra})")
        return f"{name}: analysed up to {self.stopped_at_s or 0.0:.1f} s{of}: {self.error}"

    def __repr__(self) -> str:
        return f"<FrameStream {self.summary()}>"

    # -- decoding loop ---------------------------------------------------------------------
    def _run(self) -> Iterator[Frame]:
        b = self._backend
        start = self._start or 0.0
        end = self._end
        period = 1.0 / self.info.fps if self.info.fps > 0 else 0.0
        every, fps = self._every, self._fps
        n_in_range = 0
        last_t: float | None = None
        reached_end = False
        # fps-grid sampling state
        origin, k, k_end = self._grid if self._grid is not None and fps else (start, 0, None)
        # In a part of a pass, the point before the first is followed without being emitted: a frame it takes is
        # not emitted again for the first point (as in one pass, where a frame is never repeated)
        shadow = k - 1 if self._grid is not None and fps and k > 0 else None
        if shadow is not None:
            k = shadow
        prev: tuple[int, float, Any] | None = None
        last_emitted = -1
        try:
            for idx, t, raw in b.frames(self._start):
                if t < start - _EPS:
                    continue
                if end is not None and t >= end - _EPS:
                    reached_end = True
                    break
                self.frames_decoded += 1
                last_t = t
                self.stopped_at_s = t + period
                if fps is None:
                    if n_in_range % every == 0:
                        self.frames_yielded += 1
                        yield Frame(idx, t, b.to_bgr(raw))
                    n_in_range += 1
                    continue
                while k_end is None or k < k_end:
                    g = origin + k / fps
                    if t < g - _EPS:
                        break
                    # grid point g lies in (prev.t, t]: keep the nearer frame (the earlier one on ties)
                    if prev is not None and (g - prev[1]) <= (t - g) + _EPS:
                        cand = prev
                    else:
                        cand = (idx, t, raw)
                    if k == shadow:
                        last_emitted = cand[0]
                    elif cand[0] != last_emitted:
                        last_emitted = cand[0]
                        self.frames_yielded += 1
                        yield Frame(cand[0], cand[1], b.to_bgr(cand[2]))
                    k += 1
                prev = (idx, t, raw)
            # the video ended before grid point k: the last frame is the nearest to it (unless k is the point before
            # the part, whose frame the part before emits)
            if (fps is not None and prev is not None and prev[0] != last_emitted and (k_end is None or k < k_end)
                    and k != shadow):
                g = origin + k / fps
                if g < prev[1] + max(period, _EPS) and (end is None or g < end):
                    self.frames_yielded += 1
                    yield Frame(prev[0], prev[1], b.to_bgr(prev[2]))
            prev = None
            self._finish(last_t, reached_end, period)
        finally:
            b.close()
        if self._strict and not self.complete:
            raise InputError(self.summary())

    def _finish(self, last_t: float | None, reached_end: bool, period: float) -> None:
        b = self._backend
        total = self.expected_end_s
        if last_t is not None and total is not None:
            self.stopped_at_s = min(last_t + period, max(total, last_t))
        if b.error is not None:
            self.error = b.error
        elif reached_end:
            pass
        elif last_t is None:
            self.error = "no frame could be decoded" + (" in the requested range" if self._start else "")
        elif total is not None and b.name != "pillow":
            tol = max(0.5, 3 * period) if b.duration_exact else max(2.0, 0.05 * total)
            if (self.stopped_at_s or 0.0) < total - tol:
                self.error = "the file ends early (truncated or damaged)"
        self.complete = self.error is None
        self.finished = True
        if not self.complete:
            logger.warning("%s", self.summary())


# --------------------------------------------------------------------------------------------
# backends
# --------------------------------------------------------------------------------------------
_FFMPEG_QUIET = False


def quiet_ffmpeg() -> None:
    """Turn FFmpeg's own log lines off, once per process (both PyAV's libav and OpenCV's FFmpeg).

    A damaged file is reported once, as the input's error; libav would also print "moov atom not found" and
    the like on stderr. Called before the first video is opened; an ``OPENCV_FFMPEG_LOGLEVEL`` already set is kept.
    The setting is process-wide: set ``FERKIT_FFMPEG_LOGS=1`` to keep FFmpeg's own logging as it is.
    """
    global _FFMPEG_QUIET
    if _FFMPEG_QUIET:
        return
    _FFMPEG_QUIET = True
    import os

    if os.environ.get("FERKIT_FFMPEG_LOGS", "") not in ("", "0"):
        return

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        import av.logging

        av.logging.set_libav_level(av.logging.FATAL)
    except Exception:  # noqa: BLE001, S110 - cosmetic only (an older PyAV)
        pass


def _open_backend(p: Path, backend: Backend, autorotate: bool) -> _BaseBackend:
    quiet_ffmpeg()
    if backend not in ("auto", "pyav", "opencv", "pillow"):
        raise ValueError(f"unknown video backend {backend!r}; use 'auto', 'pyav', 'opencv' or 'pillow'")
    ext = p.suffix.lower()
    first_error: str | None = None
    if backend == "pillow" or (backend == "auto" and (ext in IMAGE_EXTENSIONS or ext in ANIMATABLE_EXTENSIONS)):
        try:
            return _PillowBackend(p)
        except _OpenError as exc:
            if backend == "pillow":
                raise InputError(f"cannot open {p}: {exc}") from None
            first_error = f"not a readable image or video ({exc})"  # maybe a video named like an image
    if backend in ("auto", "pyav"):
        try:
            return _PyAVBackend(p, autorotate)
        except _OpenError as exc:
            first_error = first_error or str(exc)
    if backend == "opencv" or (backend == "auto" and ext not in IMAGE_EXTENSIONS):
        try:
            return _OpenCVBackend(p)
        except _OpenError as exc:
            first_error = first_error or str(exc)
    raise InputError(f"cannot open video {p}: {first_error}")


class _BaseBackend:
    name = "base"
    info: VideoInfo
    error: str | None = None
    decode_errors = 0
    decode_error_times: list[float | None]  # time of each packet that could not be decoded (None: unknown)
    duration_exact = True  # the duration is the video stream's own (not the longest stream's)

    def frames(self, start: float | None) -> Iterator[tuple[int, float, Any]]:
        raise NotImplementedError

    def to_bgr(self, raw: Any) -> np.ndarray:
        return raw

    def close(self) -> None:
        pass


class _PyAVBackend(_BaseBackend):
    name = "pyav"

    def __init__(self, p: Path, autorotate: bool) -> None:
        import av

        self._av = av
        try:
            self.container = av.open(str(p), metadata_errors="replace")
        except Exception as exc:  # noqa: BLE001 - av.FFmpegError, OSError, UnicodeDecodeError...
            raise _OpenError(_av_reason(exc)) from None
        try:
            self._setup(p, autorotate)
        except _OpenError:
            self.container.close()
            raise
        except Exception as exc:  # noqa: BLE001
            self.container.close()
            raise _OpenError(_av_reason(exc)) from None

    def _setup(self, p: Path, autorotate: bool) -> None:
        c = self.container
        if not c.streams.video:
            raise _OpenError("no video stream in the file")
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        self.stream = s
        self.tb = float(s.time_base) if s.time_base else 0.0
        self.start_pts: int | None = s.start_time
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else 0.0
        base = s.guessed_rate or s.base_rate
        self.vfr = bool(s.average_rate and base and abs(float(s.average_rate) - float(base)) > 0.01 * float(base))
        self.path = p
        if s.duration and self.tb:
            duration = s.duration * self.tb
        elif c.duration:
            duration = c.duration / 1e6
            self.duration_exact = False
        else:
            duration = 0.0
        self.fps = fps
        self._demux: Iterator[Any] | None = None
        self._consecutive_errors = 0
        self._decoded_any = False
        self._decode_error = ""
        self.decode_error_times = []
        self._last_t: float | None = None
        self._pending: list[Any] = []
        first = self._next_frame()
        if first is None:
            raise _OpenError(self.error or "no frame could be decoded")
        self._pending = [first]
        self.error = None
        rot = (-int(first.rotation or 0)) % 360 if autorotate else 0
        self.rotation = rot if rot in (90, 180, 270) else 0
        w, h = first.width, first.height
        if self.rotation in (90, 270):
            w, h = h, w
        n = int(s.frames or 0) or (round(duration * fps) if duration and fps else 0)
        self.info = VideoInfo(path=str(p), width=w, height=h, fps=fps, n_frames=n, duration_s=float(duration),
                              codec=s.codec_context.name or "?", backend=self.name, rotation=self.rotation,
                              vfr=self.vfr)

    def _packets(self) -> Iterator[Any]:
        if self._demux is None:
            self._demux = self.container.demux(self.stream)
        return self._demux

    def _next_frame(self) -> Any | None:
        """Next decoded frame, or ``None`` at the end / on a fatal error (``self.error`` set)."""
        if self._pending:
            return self._pending.pop(0)
        av = self._av
        packets = self._packets()
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                if self._consecutive_errors > _MAX_CONSECUTIVE_DECODE_ERRORS:  # damaged up to the end of the file
                    self.error = f"decoding failed ({self._decode_error})"
                return None
            except Exception as exc:  # noqa: BLE001 - demuxer / IO error: stop here
                self.error = f"read error ({_av_reason(exc)})"
                return None
            try:
                out = packet.decode()
            except (av.FFmpegError, ValueError) as exc:
                self.decode_errors += 1
                pts = packet.pts
                self.decode_error_times.append(
                    (pts - (self.start_pts or 0)) * self.tb if pts is not None and self.tb else None)
                self._consecutive_errors += 1
                self._decode_error = _av_reason(exc)
                if self._consecutive_errors > _MAX_CONSECUTIVE_DECODE_ERRORS and not self._decoded_any:
                    self.error = f"decoding failed ({self._decode_error})"
                    return None
                continue
            self._consecutive_errors = 0
            if out:
                self._decoded_any = True
                self._pending.extend(out[1:])
                return out[0]

    def _seek(self, start: float) -> bool:
        """Seek to the key frame at or before ``start``; False if the container cannot seek."""
        if not self.tb:
            return False
        target = int(start / self.tb) + (self.start_pts or 0)
        try:
            self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
        except Exception:  # noqa: BLE001 - unseekable: decode from the beginning instead
            return False
        self._pending = []
        self._demux = None
        return True

    def _rewind(self) -> None:
        self.container.seek(self.start_pts or 0, stream=self.stream, backward=True, any_frame=False)
        self._pending = []
        self._demux = None

    def _time(self, frame: Any, index: int) -> float:
        pts = frame.pts
        if pts is None or not self.tb:
            if self._last_t is not None and self.fps:
                return self._last_t + 1.0 / self.fps
            return index / self.fps if self.fps else 0.0
        if self.start_pts is None:
            self.start_pts = pts
        return (pts - self.start_pts) * self.tb

    def _frames_before(self, pts: int) -> int | None:
        """Number of frames shown before presentation time ``pts`` (by demuxing, not decoding, from the start),
        or None if that cannot be read."""
        try:
            with self._av.open(str(self.path), metadata_errors="replace") as c:
                n = 0
                for packet in c.demux(c.streams.video[0]):
                    if packet.dts is not None and packet.dts > pts:
                        break  # later packets are shown later still
                    if packet.size and packet.pts is not None and packet.pts < pts:
                        n += 1
                return n
        except Exception:  # noqa: BLE001 - fall back to the time x rate estimate
            return None

    def frames(self, start: float | None) -> Iterator[tuple[int, float, Any]]:
        seeked = bool(start) and self._seek(float(start or 0.0))
        index = -1
        offset: int | None = None  # after a seek in a variable-rate video: frames before the first one decoded
        checked = not seeked
        while True:
            frame = self._next_frame()
            if frame is None:
                return
            index += 1
            t = self._time(frame, index)
            if not checked:
                checked = True
                if t > (start or 0.0) + 1.5 / (self.fps or 25.0):  # seek went past start: decode from 0
                    try:
                        self._rewind()
                    except Exception:  # noqa: BLE001
                        self.error = "seeking failed"
                        return
                    seeked = False
                    index = -1
                    self._last_t = None
                    continue
            self._last_t = t
            if seeked and self.vfr and index == 0 and frame.pts is not None:
                offset = self._frames_before(frame.pts)
            if offset is not None:
                yield offset + index, t, frame
            else:
                yield (round(t * self.fps) if seeked and self.fps else index), t, frame

    def to_bgr(self, raw: Any) -> np.ndarray:
        frame = raw
        if frame.format.name == "yuv420p" and not (frame.width & 1 or frame.height & 1) and frame.color_range != 2:
            img = _yuv420p_to_bgr(frame)
        else:
            img = frame.to_ndarray(format="bgr24", src_color_range=frame.color_range or None)
            img = np.ascontiguousarray(img)
        if self.rotation:
            img = cv2.rotate(img, _CV2_ROTATE[self.rotation])
        return img

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001, S110 - closing twice or after an error is harmless
            pass


def _yuv420p_to_bgr(frame: Any) -> np.ndarray:
    """BGR from an even-sized, limited-range yuv420p frame: planes copied once into an I420 buffer."""
    w, h = frame.width, frame.height
    buf = np.empty((h * 3 // 2, w), np.uint8)
    flat = buf.reshape(-1)
    hw, quarter = h * w, (h // 2) * (w // 2)
    try:
        for plane, (rows, cols, off) in zip(frame.planes, ((h, w, 0), (h // 2, w // 2, hw),
                                                            (h // 2, w // 2, hw + quarter)), strict=True):
            stride = plane.line_size
            src = np.frombuffer(plane, np.uint8, count=rows * stride).reshape(rows, stride)[:, :cols]
            flat[off:off + rows * cols].reshape(rows, cols)[...] = src
    except (ValueError, TypeError):  # unexpected plane layout: let PyAV do it
        buf = frame.to_ndarray()
    return cv2.cvtColor(buf, cv2.COLOR_YUV2BGR_I420)


_CV2_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def _av_reason(exc: BaseException) -> str:
    text = one_line(exc)
    if "Invalid data found" in text:
        return "not a video file, or an unsupported or damaged container"
    if "moov atom not found" in text:
        return "incomplete file (moov atom not found)"
    return text


class _OpenCVBackend(_BaseBackend):
    name = "opencv"

    def __init__(self, p: Path) -> None:
        cap = cv2.VideoCapture(str(p))
        if not cap.isOpened():
            cap.release()
            raise _OpenError("not a video file, or an unsupported format")
        self.cap = cap
        ok, img = cap.read()
        if not ok or img is None:
            cap.release()
            raise _OpenError("no frame could be decoded")
        self._first: tuple[int, float, Any] | None = (0, max(0.0, cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0), img)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
        codec = "".join(chr((fourcc >> 8 * i) & 0xFF) for i in range(4)).strip("\x00 ") or "?"
        self.fps = fps
        self.info = VideoInfo(path=str(p), width=img.shape[1], height=img.shape[0], fps=fps, n_frames=max(n, 0),
                              duration_s=n / fps if fps > 0 and n > 0 else 0.0, codec=codec, backend=self.name)
        self.duration_exact = False

    def frames(self, start: float | None) -> Iterator[tuple[int, float, Any]]:
        cap = self.cap
        if start:
            cap.set(cv2.CAP_PROP_POS_MSEC, float(start) * 1000.0)
            self._first = None
        if self._first is not None:
            yield self._first
            self._first = None
        while True:
            ok, img = cap.read()
            if not ok or img is None:
                return
            idx = int(cap.get(cv2.CAP_PROP_POS_FRAMES)) - 1
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if t <= 0 and idx > 0 and self.fps:
                t = idx / self.fps
            yield idx, t, img

    def close(self) -> None:
        self.cap.release()


class _PillowBackend(_BaseBackend):
    """Animated GIF / WebP / APNG through Pillow; a still image gives a single frame."""

    name = "pillow"

    def __init__(self, p: Path) -> None:
        self.path = p
        try:
            self._fp = open(p, "rb")  # noqa: SIM115 - closed in close()
            self.im = _pil_open(self._fp)
        except Exception as exc:  # noqa: BLE001 - not an image Pillow can read
            self._close_fp()
            unknown = type(exc).__name__ == "UnidentifiedImageError"
            raise _OpenError("unrecognised format" if unknown else one_line(exc)) from None
        im = self.im
        self.animated = bool(getattr(im, "is_animated", False))
        w, h = im.size
        if w * h > DEFAULT_MAX_DECODE_PIXELS and self.animated:
            self.close()
            raise _OpenError(f"animation frames of {w}x{h} pixels are too large to decode")
        if self.animated:
            n = int(getattr(im, "n_frames", 1))
            try:
                im.load()  # WebP knows the first frame's duration only once it is loaded
            except Exception as exc:  # noqa: BLE001
                self.close()
                raise _OpenError(f"first frame could not be decoded ({one_line(exc)})") from None
            d0 = _frame_duration_ms(im) / 1000.0
            self.info = VideoInfo(path=str(p), width=w, height=h, fps=1.0 / d0, n_frames=n, duration_s=n * d0,
                                  codec=(im.format or "?").lower(), backend=self.name)
        else:
            self.info = VideoInfo(path=str(p), width=w, height=h, fps=0.0, n_frames=1, duration_s=0.0,
                                  codec=(im.format or "?").lower(), backend=self.name)

    def frames(self, start: float | None) -> Iterator[tuple[int, float, Any]]:
        if not self.animated:
            try:
                img = load_image(self.path)
            except InputError as exc:
                self.error = str(exc)
                return
            yield 0, 0.0, img
            return
        im = self.im
        t = 0.0
        for i in range(self.info.n_frames):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    im.seek(i)
                    im.load()  # WebP sets the frame's duration when it is loaded
                    dur = _frame_duration_ms(im) / 1000.0
                    img = None if start and t + dur <= start else _pil_to_bgr(im, DEFAULT_BACKGROUND)
            except EOFError:
                return
            except Exception as exc:  # noqa: BLE001 - truncated / corrupt frame: stop here
                self.error = f"frame {i} could not be decoded ({one_line(exc)})"
                return
            if img is not None:
                yield i, t, img
            t += dur

    def _close_fp(self) -> None:
        fp = getattr(self, "_fp", None)
        if fp is not None:
            fp.close()

    def close(self) -> None:
        im = getattr(self, "im", None)
        if im is not None:
            im.close()
        self._close_fp()


def _frame_duration_ms(im: Any) -> float:
    d = im.info.get("duration") or 0
    try:
        d = float(d)
    except (TypeError, ValueError):
        d = 0.0
    return d if d > 10 else 100.0
