"""Annotated output for ``ferkit analyze --annotate DIR``: face boxes, the top emotion and probability bars.

Photos are written as ``DIR/<name>.jpg``, videos as ``DIR/<name>.mp4`` (H.264 through PyAV, the analysed frames
at the analysed frame rate). Sub-folders of the inputs are mirrored under ``DIR``, and names that would clash
(``x.jpg`` beside ``x.png``) keep their original extension in the name (``x_png.jpg``): see :func:`output_paths`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ferkit.errors import OutputError
from ferkit.results import FaceTable

__all__ = ["VideoAnnotator", "annotate_image", "draw_faces", "output_path", "output_paths"]

#: BGR colour per emotion (others: grey).
COLOURS: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 220), "disgust": (40, 140, 60), "fear": (160, 60, 160), "happy": (0, 200, 255),
    "sad": (200, 120, 40), "surprise": (0, 140, 255), "neutral": (190, 190, 190), "contempt": (120, 80, 140),
}
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def output_path(folder: str | os.PathLike[str], source: str, ext: str) -> Path:
    """``folder/<stem of source><ext>`` (``<array 3>`` -> ``array_3``) for one source on its own."""
    return output_paths(folder, [(source, ext)])[0]


def output_paths(folder: str | os.PathLike[str], items: Sequence[tuple[str, str]]) -> list[Path]:
    """One distinct annotated-output path per ``(source, ext)`` of a run.

    Files keep their folder relative to the deepest folder holding all file sources (``in/a/x.jpg`` and
    ``in/b/x.jpg`` -> ``DIR/a/x.jpg``, ``DIR/b/x.jpg``). A name taken already (compared case-insensitively)
    gets the source's extension (``x.png`` -> ``x_png.jpg``), then a counter. Arrays (``<array 3>``) become
    ``array_3<ext>``. A name is never that of one of the inputs (``--annotate`` into the inputs' own folder
    must not overwrite them: ``v.mp4`` -> ``v_mp4.mp4``).
    """
    root = Path(folder)
    files = [os.path.abspath(src) for src, _ in items if not src.startswith("<")]
    try:
        base = os.path.commonpath([os.path.dirname(f) for f in files]) if files else ""
    except ValueError:  # e.g. different drives
        base = ""
    taken: set[str] = set()
    for f in files:  # inputs inside the output folder (as named, or through links): their names are taken
        for path, folder in ((f, os.path.abspath(root)), (os.path.realpath(f), os.path.realpath(root))):
            try:
                rel = os.path.relpath(path, folder)
            except ValueError:  # another drive
                continue
            if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
                taken.add(rel.lower())
    out: list[Path] = []
    for src, ext in items:
        if src.startswith("<"):
            rel_dir, stem, suffix = Path(), src.strip("<>").replace(" ", "_") or "image", ""
        else:
            full = Path(os.path.abspath(src))
            rel_dir = Path(os.path.relpath(full.parent, base)) if base else Path()
            stem, suffix = full.stem or "image", full.suffix.lstrip(".")
        candidates = [stem, *([f"{stem}_{suffix}"] if suffix else [])]
        name = next((c for c in candidates if str(rel_dir / f"{c}{ext}").lower() not in taken), None)
        k = 2
        while name is None or str(rel_dir / f"{name}{ext}").lower() in taken:
            name, k = f"{candidates[-1]}-{k}", k + 1
        taken.add(str(rel_dir / f"{name}{ext}").lower())
        out.append(root / rel_dir / f"{name}{ext}")
    return out


def draw_faces(image: np.ndarray, boxes: np.ndarray, probs: np.ndarray, classes: Sequence[str],
               landmarks: np.ndarray | None = None, bars: bool = True) -> np.ndarray:
    """Copy of a BGR image with, per face: its box, ``emotion NN%`` and one bar per class probability.

    Bar panels go beside the box (right, left, below or above), where they cover no other face if possible.
    """
    out = image.copy()
    h, w = out.shape[:2]
    t = max(1, round(max(h, w) / 500))
    xyxy = [(float(b[0]), float(b[1]), float(b[0] + b[2]), float(b[1] + b[3])) for b in boxes]
    taken: list[tuple[float, float, float, float]] = list(xyxy)
    for i in range(len(boxes)):
        x1, y1, x2, y2 = xyxy[i]
        p = probs[i]
        top = int(np.argmax(p))
        colour = COLOURS.get(classes[top], (200, 200, 200))
        p1, p2 = (round(x1), round(y1)), (round(x2), round(y2))
        if landmarks is not None and not np.isnan(landmarks[i, 0, 0]):
            ij = np.round(landmarks[i] - 0.5).astype(np.int64)
            ok = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
            out[ij[ok, 1], ij[ok, 0]] = (255, 255, 255)
        cv2.rectangle(out, p1, p2, colour, t + 1, cv2.LINE_AA)
        scale = float(np.clip((x2 - x1) / 250, 0.35, 1.0)) * max(1.0, max(h, w) / 1600)
        label = f"{classes[top]} {100 * p[top]:.0f}%"
        (tw, th), base = cv2.getTextSize(label, _FONT, scale, max(1, t))
        ty = p1[1] - 4 if p1[1] - th - base - 4 >= 0 else min(h - base, p2[1] + th + 4)
        lx = int(np.clip(p1[0], 0, max(0, w - tw - 4)))
        cv2.rectangle(out, (lx, ty - th - base), (lx + tw + 4, ty + base), colour, -1)
        cv2.putText(out, label, (lx + 2, ty), _FONT, scale, (0, 0, 0), max(1, t), cv2.LINE_AA)
        taken.append((lx, ty - th - base, lx + tw + 4, ty + base))
        if bars:
            panel = _bars(out, p, classes, xyxy[i], scale * 0.6, taken, i)
            taken.append(panel)
    return out


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    return max(iw, 0.0) * max(ih, 0.0)


def _bars(out: np.ndarray, p: np.ndarray, classes: Sequence[str], box: tuple[float, float, float, float],
          scale: float, taken: list[tuple[float, float, float, float]], own: int) -> tuple[float, float, float, float]:
    """Draw a panel of probability bars beside ``box``; returns the panel's x1, y1, x2, y2."""
    h, w = out.shape[:2]
    scale = max(scale, 0.3)
    (cw, ch), base = cv2.getTextSize("surprise", _FONT, scale, 1)
    if (ch + base + 3) * len(classes) > 0.45 * h and scale > 0.3:  # at most about half the image height
        scale = max(0.3, scale * 0.45 * h / ((ch + base + 3) * len(classes)))
        (cw, ch), base = cv2.getTextSize("surprise", _FONT, scale, 1)
    row = ch + base + 3
    bar_w = max(30, int(1.6 * cw))
    pw, ph = cw + bar_w + 10, row * len(classes) + 4
    x1, y1, x2, y2 = box
    cands = [(x2 + 4, y1), (x1 - 4 - pw, y1), (x1, y2 + 4), (x1, y1 - 4 - ph), (x2 - pw - 2, y2 - ph - 2)]
    best, best_cost = None, float("inf")
    for k, (cx, cy) in enumerate(cands):
        cx = float(np.clip(cx, 0, max(0, w - pw)))
        cy = float(np.clip(cy, 0, max(0, h - ph)))
        rect = (cx, cy, cx + pw, cy + ph)
        cost = sum(_overlap(rect, o) for j, o in enumerate(taken) if j != own) + 0.3 * _overlap(rect, box) + k
        if cost < best_cost:
            best, best_cost = rect, cost
    assert best is not None
    x0, y0 = int(best[0]), int(best[1])
    roi = out[y0:y0 + ph, x0:x0 + pw]
    roi[...] = (roi * 0.45).astype(np.uint8)  # darkened background, still see-through
    for k, c in enumerate(classes):
        yb = y0 + 2 + k * row
        cv2.putText(out, c, (x0 + 3, yb + ch), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
        bx = x0 + cw + 6
        cv2.rectangle(out, (bx, yb + 1), (bx + int(bar_w * float(p[k])), yb + ch + base - 1),
                      COLOURS.get(c, (200, 200, 200)), -1)
    return best


def _table_rows(table: FaceTable, start: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    sl = slice(start, start + n)
    lm = table.landmarks[sl] if table.landmarks is not None else None
    return table.boxes[sl], table.probs[sl], lm


def annotate_image(image: np.ndarray, table: FaceTable, classes: Sequence[str], path: str | os.PathLike[str],
                   scale: float = 1.0) -> Path:
    """Write ``image`` with the faces of ``table`` drawn on it to ``path``; returns the path.

    ``scale``: size of ``image`` over the size the table's coordinates refer to (below 1 when a huge photo
    was analysed downscaled: the annotated copy is the downscaled one).
    """
    boxes, probs, lm = _table_rows(table, 0, len(table))
    if scale != 1.0:
        boxes = boxes * scale
        lm = lm * scale if lm is not None else None
    out = draw_faces(image, boxes, probs, classes, lm)
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write annotated image {p}: {exc}") from None
    from ferkit.io import write_image

    write_image(p, out, [cv2.IMWRITE_JPEG_QUALITY, 92])  # (cv2.imwrite crashes on names that are not UTF-8)
    return p


class VideoAnnotator:
    """Writes annotated frames to an H.264 MP4 (opened on the first frame).

    Frames go to ``<name>.partial.mp4``, renamed to ``path`` by ``close(complete=True)``; a run stopped midway
    (``close(complete=False)``, an interrupt) leaves a playable ``<name>.partial.mp4``, never a cut file under
    the final name.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, classes: Sequence[str],
                 audio_from: str | os.PathLike[str] | None = None, start: float | None = None) -> None:
        self.path = Path(path)
        self.partial_path = self.path.with_name(f"{self.path.stem}.partial{self.path.suffix}")
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.classes = tuple(classes)
        self._container: Any = None
        self._stream: Any = None
        self.frames = 0
        # The source's sound, copied (not re-encoded) from ``start`` on, as long as the annotated frames last
        self._audio = _AudioCopy(audio_from, start or 0.0) if audio_from is not None else None

    def _open(self, w: int, h: int) -> None:
        from fractions import Fraction

        import av

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(self.partial_path), "w", format="mp4")
        except Exception as exc:  # noqa: BLE001 - av.FFmpegError, OSError
            raise OutputError(f"cannot write annotated video {self.path}: {exc}") from None
        rate = Fraction(self.fps).limit_denominator(1001)
        s = self._container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=rate)
        s.width, s.height = w - (w & 1), h - (h & 1)
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "23", "preset": "veryfast"}
        self._stream = s
        if self._audio is not None:
            self._audio.attach(self._container)

    def write(self, image: np.ndarray, boxes: np.ndarray, probs: np.ndarray,
              landmarks: np.ndarray | None = None) -> None:
        """Draw and encode one frame."""
        import av

        if self._container is None:
            self._open(image.shape[1], image.shape[0])
        s = self._stream
        img = draw_faces(image, boxes, probs, self.classes, landmarks)[: s.height, : s.width]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
        for packet in s.encode(frame):
            self._container.mux(packet)
        self.frames += 1
        if self._audio is not None:
            self._audio.mux_until(self._container, self.frames / self.fps)

    def write_batch(self, table: FaceTable, faces: Sequence[Any]) -> None:
        """Frames of a batch (objects with ``.image`` and ``.boxes``) with their rows in ``table`` (same order)."""
        j = 0
        for f in faces:
            n = len(f.boxes)
            boxes, probs, lm = _table_rows(table, j, n)
            j += n
            if f.image is not None:
                self.write(f.image, boxes, probs, lm)

    def close(self, complete: bool = True) -> None:
        """Finish the file: under its final name when ``complete``, else as ``<name>.partial.mp4``."""
        if self._container is None:
            return
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.mux_until(self._container, self.frames / self.fps)
        finally:
            if self._audio is not None:
                self._audio.close()
            self._container.close()
            self._container = None
        if complete:
            try:
                os.replace(self.partial_path, self.path)
            except OSError as exc:
                raise OutputError(f"cannot write annotated video {self.path}: {exc.strerror or exc}") from None

    def __enter__(self) -> VideoAnnotator:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(complete=exc_type is None)


#: Audio codecs that an MP4 file can carry as they are (copied without re-encoding).
_MP4_AUDIO = frozenset({"aac", "mp3", "mp3float", "mp2", "mp2float", "ac3", "eac3", "opus", "libopus", "alac",
                        "flac"})


class _AudioCopy:
    """Copies a video file's first audio stream into the annotated MP4, packet by packet, in step with the frames.

    Best effort: a source without sound, a codec MP4 cannot carry, or any error on the way leaves the annotated
    video without sound (never without frames)."""

    def __init__(self, source: str | os.PathLike[str], start: float) -> None:
        self.source, self.start = source, start
        self._src: Any = None
        self._out: Any = None
        self._packets: Any = None
        self._pending: Any = None
        self._origin = 0.0  # the video stream's first time stamp: time 0 of the analysis
        self._shift = 0

    def attach(self, container: Any) -> None:
        """Open the source and add its audio stream to ``container`` (before anything is written to it)."""
        import av

        try:
            src = av.open(str(self.source), metadata_errors="replace")
        except Exception:  # noqa: BLE001 - no sound, then
            return
        try:
            if not src.streams.audio or not src.streams.video:
                raise LookupError("no audio")
            a, v = src.streams.audio[0], src.streams.video[0]
            if (a.codec_context.name or "") not in _MP4_AUDIO or not a.time_base:
                raise LookupError("audio codec MP4 cannot carry")
            if v.start_time is not None and v.time_base:
                self._origin = float(v.start_time * v.time_base)
            self._out = container.add_stream_from_template(a)
            if self.start > 0:
                src.seek(int((self.start + self._origin) / a.time_base), stream=a, backward=True)
            self._shift = round((self.start + self._origin) / a.time_base)
            self._src, self._in, self._packets = src, a, src.demux(a)
        except Exception:  # noqa: BLE001 - best effort: no sound
            src.close()
            self._out = None

    def mux_until(self, container: Any, until_s: float) -> None:
        """Copy the packets that start before ``until_s`` seconds of the annotated video."""
        if self._packets is None:
            return
        try:
            while True:
                if self._pending is None:
                    pkt = next(self._packets, None)
                    if pkt is None:
                        self.close()
                        return
                    if pkt.pts is None or pkt.size == 0:
                        continue
                    self._pending = pkt
                pkt = self._pending
                t = float(pkt.pts * self._in.time_base) - self._origin - self.start
                if t >= until_s:
                    return
                self._pending = None
                if t < 0:
                    continue  # before the analysed range
                pkt.pts -= self._shift
                if pkt.dts is not None:
                    pkt.dts -= self._shift
                pkt.stream = self._out
                container.mux(pkt)
        except Exception:  # noqa: BLE001 - best effort: the rest of the sound is left out
            self.close()

    def close(self) -> None:
        self._packets = None
        if self._src is not None:
            src, self._src = self._src, None
            with contextlib.suppress(Exception):
                src.close()
