"""Bad input: a clear one-line reason per source, nothing lost, never a crash or a memory blow-up."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from ferkit import Analyzer
from ferkit.errors import InputError

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "samples"


@pytest.fixture(scope="module")
def samples() -> Path:
    if not (SAMPLES / "multi_face.jpg").is_file():
        pytest.skip(f"sample media not found at {SAMPLES}")
    return SAMPLES


@pytest.fixture(scope="module")
def az() -> Analyzer:
    with Analyzer(workers=1) as a:
        yield a


def one_line(text: str | None) -> bool:
    return bool(text) and "\n" not in text and len(text) < 300


# ------------------------------------------------------------------------------------------------ files
def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def huge_png(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A valid 1-bit PNG of 30,000 x 30,000 (all black) in ~100 kB: 900 MP if decoded in full."""
    comp = zlib.compressobj(9)
    row = bytes(1 + -(-width // 8))
    data = b"".join(comp.compress(row * 1000) for _ in range(height // 1000)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b""))
    return path


def huge_jpeg(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A valid flat-grey baseline JPEG of 30,000 x 30,000 (3.5 MB), decoded downscaled by libjpeg."""
    def seg(marker: int, payload: bytes) -> bytes:
        return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload

    one = bytes([1] + [0] * 15)
    head = (b"\xff\xd8" + seg(0xDB, b"\x00" + bytes([1] * 64))
            + seg(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
            + seg(0xC4, b"\x00" + one + b"\x00") + seg(0xC4, b"\x10" + one + b"\x00")
            + seg(0xDA, b"\x01\x01\x00\x00\x3f\x00"))
    n_bits = -(-width // 8) * -(-height // 8) * 2
    path.write_bytes(head + bytes(n_bits // 8) + b"\xff\xd9")
    return path


# ------------------------------------------------------------------------------------------------ single inputs
def test_missing_path_raises_a_clear_error(az: Analyzer, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.jpg: not found"):
        az.analyze(tmp_path / "nope.jpg")


def test_missing_path_in_a_list_is_reported(az: Analyzer, samples: Path, tmp_path: Path) -> None:
    res = az.analyze([tmp_path / "nope.jpg", samples / "single_face.jpg"])
    assert len(res) == 1
    st = res.statuses[0]
    assert st.status == "failed" and "not found" in st.reason and one_line(st.describe())
    assert res.statuses[1].status == "ok" and not res.ok


def test_zero_byte_file(az: Analyzer, tmp_path: Path) -> None:
    p = tmp_path / "empty.jpg"
    p.touch()
    with pytest.raises(InputError, match=r"empty \(0 bytes\)"):
        az.analyze(p)


def test_truncated_and_unreadable_images(az: Analyzer, samples: Path, tmp_path: Path) -> None:
    data = (samples / "single_face.jpg").read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_bytes(b"not an image at all" * 50)
    res = az.analyze([tmp_path / "half.jpg", tmp_path / "text.png"])
    reasons = [s.reason for s in res.statuses]
    assert [s.status for s in res.statuses] == ["failed", "failed"]
    assert "truncated" in reasons[0] and "half.jpg" in reasons[0]
    assert "text.png" in reasons[1] and all(one_line(r) for r in reasons)


def test_huge_png_is_refused_without_decoding(az: Analyzer, tmp_path: Path) -> None:
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InputError, match="too large"):
        az.analyze(huge_png(tmp_path / "huge.png"))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB: far from 900 MB


def test_huge_jpeg_is_downscaled(az: Analyzer, tmp_path: Path) -> None:
    res = az.analyze(huge_jpeg(tmp_path / "huge.jpg"))
    assert res.ok and len(res) == 0 and res.statuses[0].status == "no_face"


def test_bad_arrays(az: Analyzer) -> None:
    with pytest.raises(InputError, match="shape"):
        az.analyze(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        az.analyze(np.full((32, 32, 3), 7.5, np.float32))
    res = az.analyze([np.zeros((0, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)])
    assert [s.status for s in res.statuses] == ["failed", "no_face"]


# ------------------------------------------------------------------------------------------------ videos
def test_video_that_cannot_be_opened(az: Analyzer, samples: Path, tmp_path: Path) -> None:
    data = (samples / "single_face.mp4").read_bytes()  # 'moov' at the end: a cut file has no index
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    (tmp_path / "fake.mp4").write_bytes(b"this is not a video" * 100)
    res = az.analyze([tmp_path / "cut.mp4", tmp_path / "fake.mp4"])
    for st in res.statuses:
        assert st.status == "failed" and "cannot open video" in st.reason and one_line(st.reason)


@pytest.mark.parametrize("workers", [1, 2])
def test_video_that_ends_early_keeps_what_was_analysed(samples: Path, tmp_path: Path, workers: int) -> None:
    data = (samples / "WolfgangLanger_Pexels.mp4").read_bytes()  # 'moov' first: 60% stays decodable
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with Analyzer(workers=workers, every=4) as a:
        res = a.analyze(cut)
    st = res.statuses[0]
    assert st.status == "partial" and "ends early" in st.reason
    assert 6.0 < st.stopped_at_s < 18.0 and st.duration_s == pytest.approx(19.7, abs=0.1)
    assert len(res) == st.faces == st.frames > 30
    assert res.frames.max() / 23.976 < st.stopped_at_s
    frames = res.frames.tolist()
    assert frames == list(range(0, 4 * len(frames), 4))  # nothing lost before the cut
    assert f"stopped at {st.stopped_at_s:.1f} s of 19.7 s" in st.describe()


# ------------------------------------------------------------------------------------------------ folders
def test_folder_with_bad_files_among_good_ones(az: Analyzer, samples: Path, tmp_path: Path) -> None:
    (tmp_path / "a_good.jpg").write_bytes((samples / "single_face.jpg").read_bytes())
    (tmp_path / "b_empty.jpg").touch()
    (tmp_path / "c_good.png").write_bytes((samples / "Image_with_alpha.png").read_bytes())
    (tmp_path / "d_bad.jpg").write_bytes(b"\xff\xd8garbage")
    (tmp_path / "e_bad.mp4").write_bytes(b"garbage" * 10)
    res = az.analyze(tmp_path)
    status = {Path(s.source).name: s.status for s in res.statuses}
    assert status == {"a_good.jpg": "ok", "b_empty.jpg": "failed", "c_good.png": "ok", "d_bad.jpg": "failed",
                      "e_bad.mp4": "failed"}
    assert len(res) == 2 and not res.ok and len(res.failed) == 3


def test_empty_folder(az: Analyzer, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no images or videos"):
        az.analyze(tmp_path)
