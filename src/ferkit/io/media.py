"""Tell images from videos by file name (and, for animated formats or unknown names, by content).

An animated GIF / WebP / PNG (APNG) counts as a *video*: read it with :func:`ferkit.io.iter_frames`.
A still GIF / WebP / PNG counts as an *image*.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

MediaKind = Literal["image", "video"]

#: Still-image extensions (lower case, with the dot). All are decoded by Pillow (OpenCV as a fallback).
IMAGE_EXTENSIONS: frozenset[str] = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".gif",
    ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".jp2", ".j2k", ".avif",
})
#: Video extensions. Anything else FFmpeg (PyAV) can open also works when passed explicitly.
VIDEO_EXTENSIONS: frozenset[str] = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".wmv", ".flv", ".3gp", ".ogv", ".mxf",
})
#: Image formats that may hold an animation; the file is opened (lazily, header only) to decide.
ANIMATABLE_EXTENSIONS: frozenset[str] = frozenset({".gif", ".webp", ".png", ".apng", ".avif"})

MEDIA_EXTENSIONS: frozenset[str] = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS | {".apng"}


def is_animated_image(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is an image file with more than one frame (animated GIF / WebP / APNG)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                return bool(getattr(im, "is_animated", False)) and getattr(im, "n_frames", 2) > 1
    except Exception:  # noqa: BLE001 - unreadable: the loader reports the precise error later
        return False


def media_kind(path: str | os.PathLike[str], *, sniff: bool = False) -> MediaKind | None:
    """``'image'``, ``'video'`` or ``None`` (not a supported media file) for ``path``.

    The decision uses the file extension; files with an animatable image extension (``.gif``,
    ``.webp``, ``.png``...) are opened to check for several frames. With ``sniff=True`` a file with
    an unknown extension is opened to look at its content (Pillow first, then FFmpeg). A missing
    file gives the answer its extension suggests (``None`` when sniffing is needed).
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in ANIMATABLE_EXTENSIONS or ext == ".apng":
        if p.is_file() and is_animated_image(p):
            return "video"
        return "image"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if sniff and p.is_file():
        return _sniff(p)
    return None


def _sniff(p: Path) -> MediaKind | None:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(p) as im:
                animated = bool(getattr(im, "is_animated", False))
                return "video" if animated else "image"
    except Exception:  # noqa: BLE001, S110 - any failure just means "not an image"
        pass
    try:
        import av

        with av.open(str(p), metadata_errors="replace") as container:
            return "video" if container.streams.video else None
    except Exception:  # noqa: BLE001 - not openable by FFmpeg either
        return None


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """True if :func:`media_kind` says ``'video'`` (including animated GIF / WebP / APNG)."""
    return media_kind(path) == "video"


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True if :func:`media_kind` says ``'image'``."""
    return media_kind(path) == "image"
