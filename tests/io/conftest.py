"""Fixtures for the io tests: the shared sample files and cheap synthetic media."""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

try:  # run from a plain checkout too (the package is normally installed, or pythonpath=src)
    import ferkit.io  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    """The folder of real sample photos and videos (tests using it are skipped when absent)."""
    if not (SAMPLES / "WolfgangLanger_Pexels.mp4").is_file():
        pytest.skip(f"sample media not found at {SAMPLES}")
    return SAMPLES


# ------------------------------------------------------------------------------------------------
# hand-written huge images
# ------------------------------------------------------------------------------------------------
def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload


def write_huge_grey_jpeg(path: Path, width: int, height: int) -> Path:
    """A valid baseline grey JPEG of any size, flat mid-grey, in about width*height/32 bytes.

    Every 8x8 block is coded as "DC difference 0, end of block" with one-bit Huffman codes, so the
    entropy-coded data is just zero bytes: 30,000 x 30,000 takes 3.5 MB, written in 30 ms.
    """
    n_bits = -(-width // 8) * -(-height // 8) * 2
    one_code = bytes([1] + [0] * 15)
    head = (b"\xff\xd8"
            + _segment(0xDB, b"\x00" + bytes([1] * 64))                                   # DQT
            + _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")  # SOF0
            + _segment(0xC4, b"\x00" + one_code + b"\x00")                                 # DC: '0' -> 0
            + _segment(0xC4, b"\x10" + one_code + b"\x00")                                 # AC: '0' -> EOB
            + _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"))                                 # SOS
    full, rest = divmod(n_bits, 8)
    with open(path, "wb") as f:
        f.write(head)
        chunk = bytes(1 << 20)
        f.writelines(chunk for _ in range(full // len(chunk)))
        f.write(bytes(full % len(chunk)))
        if rest:
            f.write(bytes([(1 << (8 - rest)) - 1]))  # pad with 1 bits
        f.write(b"\xff\xd9")
    return path


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def write_huge_png(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit grey PNG of any size (black), its rows zlib-compressed as a stream."""
    row = bytes(1 + -(-width // 8))
    comp = zlib.compressobj(1)
    per_chunk = max(1, (4 << 20) // len(row))
    block = row * per_chunk
    parts, left = [], height
    while left > 0:
        n = min(left, per_chunk)
        parts.append(comp.compress(block if n == per_chunk else row * n))
        left -= n
    parts.append(comp.flush())
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)))
        f.write(_png_chunk(b"IDAT", b"".join(parts)))
        f.write(_png_chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="session")
def huge_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_huge_grey_jpeg(tmp_path_factory.mktemp("huge") / "huge_30000.jpg", 30000, 30000)


@pytest.fixture(scope="session")
def huge_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_huge_png(tmp_path_factory.mktemp("huge") / "huge_30000.png", 30000, 30000)


# ------------------------------------------------------------------------------------------------
# tiny videos
# ------------------------------------------------------------------------------------------------
def pattern(w: int, h: int, i: int = 0) -> np.ndarray:
    """An RGB test pattern: red left third, green top quarter, blue channel counting frames."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 3, 0] = 255
    img[: h // 4, :, 1] = 255
    img[..., 2] = (i * 10) % 256
    return img


def write_video(path: Path, n: int = 20, w: int = 64, h: int = 48, rate: int = 25, codec: str = "libx264",
                pix_fmt: str = "yuv420p", rotation: int | None = None) -> Path:
    av = pytest.importorskip("av")
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg build has no {codec} encoder")
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if rotation is not None:
            s.set_display_rotation(rotation)
        for i in range(n):
            for p in s.encode(av.VideoFrame.from_ndarray(pattern(w, h, i), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture
def make_video() -> Callable[..., Path]:
    """``make_video(path, n=20, w=64, h=48, rate=25, codec='libx264', pix_fmt='yuv420p', rotation=None)``."""
    return write_video
