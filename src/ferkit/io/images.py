"""Load still images as BGR ``uint8`` arrays (H, W, 3), C-contiguous, like OpenCV.

Rules applied to every file (and, through :func:`to_bgr`, to arrays given by users):

* EXIF orientation is applied (the array is upright as a photo viewer shows it).
* Grey images (``L``, 16-bit ``I;16``, 32-bit ``I``, float ``F``) are replicated to 3 channels.
* 16-bit data is scaled to 8 bits with rounding (``round(v / 257)``), not truncated.
* Transparency (RGBA, LA, palette or grey with a transparent colour) is composited over a
  neutral mid-grey background (:data:`DEFAULT_BACKGROUND`), never left as black garbage.
* Palette, CMYK, YCbCr, LAB... are converted to colour. ICC profiles are ignored.

Huge images are never decoded at full size when that can be avoided: the header is read first,
and an image with more than ``max_pixels`` pixels (default :data:`DEFAULT_MAX_PIXELS`, 40 MP) is
downscaled while decoding (JPEG: libjpeg DCT scaling by 1/2, 1/4 or 1/8, then an area resize) to
at most ``max_pixels`` pixels. Formats that cannot be decoded at reduced size (PNG, TIFF, WebP...)
are decoded in full only up to ``max_decode_pixels`` (default :data:`DEFAULT_MAX_DECODE_PIXELS`,
180 MP, Pillow's own decompression-bomb limit); beyond that they are refused with an
:class:`~ferkit.errors.InputError`. Pillow's own decompression-bomb check (``Image.MAX_IMAGE_PIXELS``)
is replaced by these two limits: it is switched off only while a header is parsed, under a lock,
and restored at once.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, overload

import cv2
import numpy as np

from ferkit.errors import InputError
from ferkit.io._files import PathLike, check_input_file, one_line

if TYPE_CHECKING:
    from PIL import Image as PILImage

#: Largest output image, in pixels (40 MP, e.g. 7,750 x 5,160). Bigger images come back downscaled;
#: face analysis gains nothing from more, and 40 MP of BGR is already 120 MB.
DEFAULT_MAX_PIXELS = 40_000_000
#: Largest image decoded at full size when the format cannot be decoded downscaled (PNG, TIFF...).
DEFAULT_MAX_DECODE_PIXELS = 180_000_000
#: Colour (B, G, R) that transparent pixels are composited over: neutral mid-grey.
DEFAULT_BACKGROUND: tuple[int, int, int] = (128, 128, 128)

_PIL_OPEN_LOCK = threading.Lock()
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`load_image` did to a file.

    Sizes are ``(width, height)``. ``orig_size`` is the full-resolution size *after* EXIF
    orientation, so a point ``(x, y)`` of the returned array is ``(x / scale, y / scale)`` in the
    upright original.
    """

    path: str
    format: str | None
    mode: str | None
    orig_size: tuple[int, int]
    size: tuple[int, int]
    scale: float
    exif_orientation: int = 1
    had_alpha: bool = False

    @property
    def exif_rotated(self) -> bool:
        """True when an EXIF orientation other than 'normal' was applied."""
        return self.exif_orientation != 1

    @property
    def downscaled(self) -> bool:
        """True when the returned image is smaller than the original."""
        return self.size != self.orig_size


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
@overload
def load_image(path: PathLike, *, max_pixels: int | None = ..., max_decode_pixels: int | None = ...,
               background: tuple[int, int, int] = ..., exif: bool = ...,
               return_info: Literal[False] = ...) -> np.ndarray: ...
@overload
def load_image(path: PathLike, *, max_pixels: int | None = ..., max_decode_pixels: int | None = ...,
               background: tuple[int, int, int] = ..., exif: bool = ...,
               return_info: Literal[True]) -> tuple[np.ndarray, ImageInfo]: ...
def load_image(path: PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
               max_decode_pixels: int | None = DEFAULT_MAX_DECODE_PIXELS,
               background: tuple[int, int, int] = DEFAULT_BACKGROUND, exif: bool = True,
               return_info: bool = False) -> np.ndarray | tuple[np.ndarray, ImageInfo]:
    """Read an image file as a BGR ``uint8`` array of shape (H, W, 3).

    Args:
        path: image file (jpg, png, bmp, tiff, webp, gif (first frame), ppm, tga, jp2, avif...).
        max_pixels: downscale (while decoding where possible) to at most this many pixels;
            ``None`` disables downscaling.
        max_decode_pixels: refuse files that would need a full decode larger than this;
            ``None`` disables the check (only do that for trusted files).
        background: BGR colour under transparent pixels.
        exif: apply the EXIF orientation tag.
        return_info: also return an :class:`ImageInfo` (original size, scale, orientation...).

    Raises:
        InputError: missing path, folder, empty file, unknown format, corrupt or truncated data,
            or an image too large to decode. The message is one line naming the file.
    """
    p = check_input_file(path, "image")
    try:
        fp = open(p, "rb")  # noqa: SIM115 - closed below; Pillow reads the header lazily from it
    except OSError as exc:
        raise InputError(f"cannot read image {p}: {one_line(exc)}") from None
    with fp:
        image, info = _decode(fp, lambda: np.fromfile(p, dtype=np.uint8), str(p),
                              max_pixels, max_decode_pixels, background, exif)
    return (image, info) if return_info else image


@overload
def decode_image(data: bytes, name: str = ..., *, max_pixels: int | None = ...,
                 max_decode_pixels: int | None = ..., background: tuple[int, int, int] = ...,
                 exif: bool = ..., return_info: Literal[False] = ...) -> np.ndarray: ...
@overload
def decode_image(data: bytes, name: str = ..., *, max_pixels: int | None = ...,
                 max_decode_pixels: int | None = ..., background: tuple[int, int, int] = ...,
                 exif: bool = ..., return_info: Literal[True]) -> tuple[np.ndarray, ImageInfo]: ...
def decode_image(data: bytes, name: str = "<bytes>", *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 max_decode_pixels: int | None = DEFAULT_MAX_DECODE_PIXELS,
                 background: tuple[int, int, int] = DEFAULT_BACKGROUND, exif: bool = True,
                 return_info: bool = False) -> np.ndarray | tuple[np.ndarray, ImageInfo]:
    """Like :func:`load_image` for an encoded image held in memory (an upload, an archive member).

    ``name`` is only used in error messages and :attr:`ImageInfo.path`.
    """
    if not data:
        raise InputError(f"image {name} is empty (0 bytes)")
    data = bytes(data)
    buf = np.frombuffer(data, dtype=np.uint8)
    image, info = _decode(io.BytesIO(data), lambda: buf, name, max_pixels, max_decode_pixels, background, exif)
    return (image, info) if return_info else image


def to_bgr(image: np.ndarray | PILImage.Image, *, rgb: bool = False,
           background: tuple[int, int, int] = DEFAULT_BACKGROUND) -> np.ndarray:
    """Normalise a user-given array to BGR ``uint8`` (H, W, 3), C-contiguous.

    Colour arrays are assumed to be in OpenCV's **BGR / BGRA** order; pass ``rgb=True`` for
    RGB / RGBA arrays (Pillow, matplotlib, imageio). Accepted: grey (H, W) or (H, W, 1),
    grey + alpha (H, W, 2), colour (H, W, 3), colour + alpha (H, W, 4); dtypes ``uint8``,
    ``uint16`` (16-bit range), ``bool``, other integers holding 0..255 (or 0..65535), and floats in
    [0, 1]. Alpha is composited over ``background`` (BGR). An array already BGR ``uint8`` and
    C-contiguous is returned as is (no copy).

    A Pillow image is accepted too (its mode tells the channel order, so ``rgb`` is not needed) and is
    turned upright by its EXIF orientation, as :func:`load_image` does for files (an image already passed
    through ``ImageOps.exif_transpose`` has no orientation tag left, so it is not turned twice).

    Raises:
        InputError: wrong shape, empty array, unsupported dtype or float values outside [0, 1].
    """
    if hasattr(image, "getbands") and hasattr(image, "mode"):  # a PIL.Image.Image
        return _apply_orientation(_pil_to_bgr(image, background),  # type: ignore[arg-type]
                                  _exif_orientation(image))  # type: ignore[arg-type]
    a = np.asarray(image)
    if a.dtype == object or a.size == 0:
        raise InputError(f"image array is empty or not numeric (shape {a.shape}, dtype {a.dtype})")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (2, 3, 4)):
        hint = (f": a stack of {a.shape[0]} images? pass them as a list (list(images)) or as (n, h, w, 1)"
                if a.ndim in (3, 4) else "")
        raise InputError(f"image array must be HxW, HxWx1, HxWx2, HxWx3 or HxWx4; got shape {a.shape}{hint}")
    a = _to_uint8(a)
    if a.ndim == 2:
        return cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)
    channels = a.shape[2]
    if channels == 3:
        if rgb:
            return cv2.cvtColor(a, cv2.COLOR_RGB2BGR)
        return np.ascontiguousarray(a)
    if channels == 2:
        color = cv2.cvtColor(np.ascontiguousarray(a[..., 0]), cv2.COLOR_GRAY2BGR)
        alpha = a[..., 1]
    else:
        color = cv2.cvtColor(a, cv2.COLOR_RGBA2BGR if rgb else cv2.COLOR_BGRA2BGR)
        alpha = a[..., 3]
    return _composite(color, alpha, background)


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------
def _decode(fp: BinaryIO, get_bytes: Callable[[], np.ndarray], name: str, max_pixels: int | None,
            max_decode_pixels: int | None, background: tuple[int, int, int],
            exif: bool) -> tuple[np.ndarray, ImageInfo]:
    """Decode from ``fp`` (Pillow, lazily); ``get_bytes`` gives the whole file for OpenCV paths."""
    from PIL import UnidentifiedImageError

    if max_pixels is not None and max_pixels < 1:
        raise ValueError(f"max_pixels must be at least 1, got {max_pixels}")
    try:
        im = _pil_open(fp)
    except UnidentifiedImageError:
        return _decode_with_opencv(get_bytes(), name, max_pixels, background)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad headers
        raise InputError(f"cannot load image {name}: corrupt or unsupported header ({one_line(exc)})") from None
    with im:
        return _decode_pil(im, get_bytes, name, max_pixels, max_decode_pixels, background, exif)


def _pil_open(fp: BinaryIO) -> PILImage.Image:
    """``Image.open`` (lazy: reads the header only) without Pillow's global decompression-bomb check.

    The sizes are checked by the caller against ``max_pixels`` / ``max_decode_pixels`` instead.
    """
    from PIL import Image

    with _PIL_OPEN_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return Image.open(fp)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _decode_pil(im: PILImage.Image, get_bytes: Callable[[], np.ndarray], name: str, max_pixels: int | None,
                max_decode_pixels: int | None, background: tuple[int, int, int],
                exif: bool) -> tuple[np.ndarray, ImageInfo]:
    fmt, mode = im.format, im.mode
    w, h = im.size
    if w < 1 or h < 1:
        raise InputError(f"cannot load image {name}: invalid size {w}x{h}")
    orientation = _exif_orientation(im) if exif else 1
    target = _target_size(w, h, max_pixels)
    had_alpha = "A" in mode or "transparency" in im.info or (mode in ("P", "PA") and _palette_has_alpha(im))

    if target is not None and fmt == "JPEG":
        with contextlib.suppress(Exception):  # an optimisation only
            im.draft(im.mode, target)  # libjpeg DCT scaling: 1/2, 1/4 or 1/8, never below target
    dw, dh = im.size
    if max_decode_pixels is not None and dw * dh > max_decode_pixels:
        raise InputError(
            f"image {name} is too large to decode: {w}x{h} ({w * h / 1e6:.0f} MP) {fmt or ''} exceeds the "
            f"{max_decode_pixels / 1e6:.0f} MP limit for a full decode (downscale the file first)"
        )

    arr = _decode_fast(get_bytes, im) if target is None else None
    if arr is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                im.load()
        except Exception as exc:  # noqa: BLE001 - OSError, SyntaxError, ValueError, zlib.error...
            raise InputError(f"cannot load image {name}: truncated or corrupt data ({one_line(exc)})") from None
        if exif and orientation == 1 and fmt == "PNG":
            orientation = _exif_orientation(im)  # an eXIf chunk after the image data is known now
        src = im
        if target is not None:
            k = min(dw // target[0], dh // target[1])
            if k >= 2:
                try:
                    src = im.reduce(k)  # cheap box reduction before the exact area resize
                except (ValueError, NotImplementedError):
                    src = im
        arr = _pil_to_bgr(src, background)
    if target is not None and (arr.shape[1], arr.shape[0]) != target:
        arr = cv2.resize(arr, target, interpolation=cv2.INTER_AREA)
    arr = _apply_orientation(arr, orientation)
    arr = np.ascontiguousarray(arr)

    upright = (h, w) if orientation >= 5 else (w, h)
    out_size = (arr.shape[1], arr.shape[0])
    scale = out_size[0] / upright[0] if out_size != upright else 1.0
    info = ImageInfo(path=name, format=fmt, mode=mode, orig_size=upright, size=out_size, scale=scale,
                     exif_orientation=orientation, had_alpha=bool(had_alpha))
    return arr, info


def _decode_with_opencv(buf: np.ndarray, name: str, max_pixels: int | None,
                        background: tuple[int, int, int]) -> tuple[np.ndarray, ImageInfo]:
    """Formats Pillow does not know but OpenCV may (OpenEXR, Radiance HDR...)."""
    try:
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        arr = None
    if arr is None:
        raise InputError(f"cannot load image {name}: not an image file, or an unsupported format")
    if arr.dtype.kind == "f":
        arr = np.clip(arr, 0.0, 1.0)  # HDR / EXR: clip to the displayable range
    out = to_bgr(arr, background=background)
    h, w = out.shape[:2]
    target = _target_size(w, h, max_pixels)
    if target is not None:
        out = cv2.resize(out, target, interpolation=cv2.INTER_AREA)
    size = (out.shape[1], out.shape[0])
    info = ImageInfo(path=name, format=None, mode=None, orig_size=(w, h), size=size,
                     scale=size[0] / w if size != (w, h) else 1.0,
                     had_alpha=arr.ndim == 3 and arr.shape[2] in (2, 4))
    return np.ascontiguousarray(out), info


def _decode_fast(get_bytes: Callable[[], np.ndarray], im: PILImage.Image) -> np.ndarray | None:
    """Decode with OpenCV where it is faster than Pillow and gives the same pixels; else ``None``.

    JPEG (RGB / grey) and plain 8-bit PNG go through ``cv2.imdecode`` (about 1.5x faster than Pillow);
    16-bit colour PNG / TIFF go through it too, because Pillow truncates them to their high byte.
    Only complete files are handed to OpenCV (JPEG ending with its EOI marker, PNG with its IEND
    chunk): OpenCV may return a half-grey image for a truncated file, Pillow reports the error.
    Any failure returns ``None`` and Pillow decodes instead.
    """
    fmt, mode = im.format, im.mode
    rawmode = _rawmode(im)
    is16 = ";16" in rawmode
    if "transparency" in im.info or fmt not in ("JPEG", "PNG", "TIFF"):
        return None
    if mode in ("RGB", "L") and (fmt == "JPEG" or (fmt == "PNG" and not is16)):
        unchanged = False
    elif fmt in ("PNG", "TIFF") and mode in ("RGB", "RGBA") and is16:
        unchanged = True
    else:
        return None
    try:
        buf = get_bytes()
    except OSError:
        return None
    tail = buf[-64:].tobytes()
    if (fmt == "JPEG" and b"\xff\xd9" not in tail) or (fmt == "PNG" and b"IEND" not in tail):
        return None
    flags = (cv2.IMREAD_UNCHANGED if unchanged else cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        arr = cv2.imdecode(buf, flags)
    except cv2.error:
        return None
    if arr is None or arr.shape[:2] != (im.size[1], im.size[0]):
        return None
    if unchanged:
        if arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
            return None
        return to_bgr(arr)
    return arr


def _rawmode(im: PILImage.Image) -> str:
    try:
        args = im.tile[0].args if im.tile else ""
    except (AttributeError, IndexError):
        return ""
    if isinstance(args, tuple):
        args = args[0] if args else ""
    return args if isinstance(args, str) else ""


def _palette_has_alpha(im: PILImage.Image) -> bool:
    try:
        return im.palette is not None and "A" in im.palette.mode
    except Exception:  # noqa: BLE001
        return False


def _target_size(w: int, h: int, max_pixels: int | None) -> tuple[int, int] | None:
    """Output (width, height) if (w, h) exceeds ``max_pixels``, else ``None``."""
    if max_pixels is None or w * h <= max_pixels:
        return None
    s = math.sqrt(max_pixels / (w * h))
    tw, th = max(1, int(w * s)), max(1, int(h * s))
    while tw * th > max_pixels and (tw > 1 or th > 1):  # guard against float rounding
        tw, th = max(1, tw - 1), max(1, th - 1)
    return tw, th


def _exif_orientation(im: PILImage.Image) -> int:
    """EXIF orientation 1..8 (1 when absent or broken). Never triggers a full decode."""
    if im.format == "PNG" and "exif" not in im.info and im.tile:
        return 1  # PngImageFile.getexif() would decode the whole image to look for a late eXIf chunk
    try:
        value = int(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - corrupt EXIF must not make an image unreadable
        return 1
    return value if 1 <= value <= 8 else 1


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Make an image stored with EXIF ``orientation`` upright (same result as ``ImageOps.exif_transpose``)."""
    if orientation == 2:
        return cv2.flip(a, 1)
    if orientation == 3:
        return cv2.rotate(a, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(a, 0)
    if orientation == 5:
        return cv2.transpose(a)
    if orientation == 6:
        return cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.transpose(a), -1)
    if orientation == 8:
        return cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return a


def _pil_to_bgr(im: PILImage.Image, background: tuple[int, int, int]) -> np.ndarray:
    """Convert a loaded Pillow image of any mode with the module's rules."""
    mode = im.mode
    has_trns = "transparency" in im.info
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Palette images with Transparency expressed in bytes..."
        if mode == "1":
            im = im.convert("L")
        elif mode in ("P", "PA"):
            im = im.convert("RGBA" if has_trns or mode == "PA" or _palette_has_alpha(im) else "RGB")
        elif mode == "L" and has_trns:
            im = im.convert("LA")
        elif mode == "RGB" and has_trns:
            im = im.convert("RGBA")
        elif mode == "La":
            im = im.convert("LA")
        elif mode == "RGBa":
            im = im.convert("RGBA")
        elif mode in ("L", "LA", "RGB", "RGBA", "I", "F") or mode.startswith("I;16"):
            pass
        else:  # CMYK, RGBX, YCbCr, LAB, HSV, ...
            im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    a = np.asarray(im)
    if im.mode.startswith("I;16"):
        a = a.astype(np.uint16)  # native byte order, 16-bit range
    elif im.mode == "I":
        a = a.astype(np.uint8) if 0 <= a.min() and a.max() <= 255 else np.clip(a, 0, 65535).astype(np.uint16)
    elif im.mode == "F":
        a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        if a.min() < 0.0 or a.max() > 1.0:  # not a [0, 1] image: take it as 0..255 data
            a = np.clip(a + 0.5, 0, 255).astype(np.uint8)
    return to_bgr(a, rgb=True, background=background)


def _to_uint8(a: np.ndarray) -> np.ndarray:
    dt = a.dtype
    if dt == np.uint8:
        return a
    if dt == np.bool_:
        return a.astype(np.uint8) * np.uint8(255)
    if dt == np.uint16:
        return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(dt, np.floating):
        f = a.astype(np.float32, copy=False)
        if not np.isfinite(f).all():
            f = np.nan_to_num(f, nan=0.0, posinf=1.0, neginf=0.0)
        lo, hi = float(f.min()), float(f.max())
        if lo < -0.01 or hi > 1.01:
            raise InputError(f"float image values must lie in [0, 1], found {lo:.4g}..{hi:.4g} "
                             "(scale the array, or pass uint8 for 0..255 data)")
        return np.clip(f * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if np.issubdtype(dt, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo >= 0 and hi <= 255:
            return a.astype(np.uint8)
        if lo >= 0 and hi <= 65535:
            return _to_uint8(a.astype(np.uint16))
        raise InputError(f"integer image values must lie in 0..255 (or 0..65535), found {lo}..{hi}")
    raise InputError(f"unsupported image array dtype {dt}")


def _composite(color: np.ndarray, alpha: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """Blend BGR ``color`` over a solid ``background`` with ``alpha`` (uint8), rounding correctly."""
    if int(alpha.min()) == 255:
        return np.ascontiguousarray(color)
    a = alpha.astype(np.uint16)[..., None]
    bg = np.asarray(background, dtype=np.uint16).reshape(1, 1, 3)
    out = color.astype(np.uint16) * a + bg * (255 - a) + 127
    out //= 255
    return out.astype(np.uint8)


def write_image(path: PathLike, image: np.ndarray, params: Sequence[int] = ()) -> None:
    """Write a BGR image to ``path`` (format from the extension) through Python's own file I/O, so any file name
    works (``cv2.imwrite`` crashes on names that are not UTF-8), atomically (a stop midway leaves no half-written
    image). Raises :class:`OutputError`."""
    from ferkit.errors import OutputError

    p = Path(os.fspath(path))
    ext = p.suffix.lower() or ".png"
    try:
        ok, buf = cv2.imencode(ext, image, list(params))
    except cv2.error:
        ok = False
    if not ok:
        raise OutputError(f"cannot encode an image as {ext!r} for {p} (use .jpg or .png)")
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(buf.tobytes())
        os.replace(tmp, p)
    except OSError as exc:
        raise OutputError(f"cannot write {p}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)

