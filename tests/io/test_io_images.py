"""Tests of ferkit.io.images: load_image / decode_image / to_bgr."""

from __future__ import annotations

import resource
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from ferkit.errors import InputError
from ferkit.io import DEFAULT_BACKGROUND, ImageInfo, decode_image, load_image, to_bgr

SAMPLE_PHOTOS = ["single_face.jpg", "multi_face.jpg", "free-mountain-vector-01.jpg", "0-f1-su-ph.jpg",
                 "45-m7-di-ph.jpg", "BWPictureHuman.jpg", "Image_with_alpha.png"]


def _check_bgr(a: np.ndarray) -> None:
    assert a.dtype == np.uint8
    assert a.ndim == 3 and a.shape[2] == 3
    assert a.flags.c_contiguous


def _pil_reference(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))[..., ::-1]


def _asymmetric(w: int = 60, h: int = 40) -> np.ndarray:
    """RGB image whose every flip / rotation differs: a bright block in the top-left corner."""
    img = np.full((h, w, 3), 40, np.uint8)
    img[: h // 3, : w // 4] = (250, 30, 30)
    img[h // 2:, w // 2:, 1] = 200
    return img


# ------------------------------------------------------------------------------------------------
# real samples
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SAMPLE_PHOTOS)
def test_sample_photos_load_like_pillow(samples: Path, name: str) -> None:
    img, info = load_image(samples / name, return_info=True)
    _check_bgr(img)
    ref = _pil_reference(samples / name)
    assert img.shape == ref.shape
    diff = np.abs(img.astype(int) - ref.astype(int))
    assert diff.mean() < 0.5 and diff.max() <= 3
    assert isinstance(info, ImageInfo)
    assert info.orig_size == info.size == (img.shape[1], img.shape[0])
    assert info.scale == 1.0 and not info.downscaled


def test_grey_sample_is_three_equal_channels(samples: Path) -> None:
    img, info = load_image(samples / "BWPictureHuman.jpg", return_info=True)
    assert info.mode == "L"
    assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])


def test_max_pixels_downscales_and_reports_scale(samples: Path) -> None:
    img, info = load_image(samples / "multi_face.jpg", max_pixels=100_000, return_info=True)
    _check_bgr(img)
    assert img.shape[0] * img.shape[1] <= 100_000
    assert info.orig_size == (1000, 667)
    assert info.downscaled and info.scale == pytest.approx(img.shape[1] / 1000)
    assert abs(img.shape[1] / img.shape[0] - 1000 / 667) < 0.01  # aspect ratio kept


def test_decode_image_from_bytes(samples: Path) -> None:
    data = (samples / "single_face.jpg").read_bytes()
    assert np.array_equal(decode_image(data, "upload.jpg"), load_image(samples / "single_face.jpg"))
    with pytest.raises(InputError, match="upload.jpg"):
        decode_image(b"", "upload.jpg")


# ------------------------------------------------------------------------------------------------
# EXIF orientation
# ------------------------------------------------------------------------------------------------
def test_exif_orientation_6_is_rotated_clockwise(tmp_path: Path) -> None:
    rgb = _asymmetric()
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / "rot6.jpg"
    Image.fromarray(rgb).save(p, quality=95, exif=exif)
    img, info = load_image(p, return_info=True)
    assert img.shape == (60, 40, 3)  # stored 60 wide x 40 high, shown 40 wide x 60 high
    expected = np.rot90(rgb, k=-1)[..., ::-1]  # 90 degrees clockwise, as BGR
    assert np.abs(img.astype(int) - expected.astype(int)).mean() < 3
    assert img[2, -2, 2] > 200 and img[2, 2, 2] < 100  # the red corner moved to the top right
    assert info.exif_orientation == 6 and info.exif_rotated
    assert info.orig_size == (40, 60) and not info.downscaled
    raw = load_image(p, exif=False)
    assert raw.shape == (40, 60, 3)
    # A Pillow image (the Python API accepts one) is turned upright the same way, and not twice
    with Image.open(p) as im:
        assert np.array_equal(to_bgr(im), img)
        assert np.array_equal(to_bgr(ImageOps.exif_transpose(im)), img)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_exif_orientations_match_pillow(tmp_path: Path, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = tmp_path / f"o{orientation}.png"
    Image.fromarray(_asymmetric()).save(p, exif=exif)  # lossless: exact comparison
    with Image.open(p) as im:
        ref = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))[..., ::-1]
    img, info = load_image(p, return_info=True)
    assert info.exif_orientation == orientation
    assert np.array_equal(img, ref)


# ------------------------------------------------------------------------------------------------
# modes: grey, 16-bit, float, alpha, palette, CMYK
# ------------------------------------------------------------------------------------------------
def test_grey_png(tmp_path: Path) -> None:
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert np.array_equal(img, np.repeat(g[..., None], 3, axis=2))


def test_16bit_grey_png_scaled_with_rounding(tmp_path: Path) -> None:
    g = np.array([[0, 128, 129, 257 * 100, 65535, 65535 // 2]], dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), g)
    img, info = load_image(tmp_path / "g16.png", return_info=True)
    assert info.mode.startswith("I;16")
    assert img[0, :, 0].tolist() == [0, 0, 1, 100, 255, 127]


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_colour_scaled_with_rounding(tmp_path: Path, ext: str) -> None:
    bgr16 = np.zeros((2, 3, 3), np.uint16)
    bgr16[0, 0] = (41743, 65535, 128)  # 162.4 -> 162 (Pillow alone would give the high byte, 163)
    bgr16[1, 2] = (257 * 7, 257 * 200, 129)
    p = tmp_path / f"c16.{ext}"
    cv2.imwrite(str(p), bgr16)
    img = load_image(p)
    assert img[0, 0].tolist() == [162, 255, 0]
    assert img[1, 2].tolist() == [7, 200, 1]


def test_32bit_int_and_float_tiff(tmp_path: Path) -> None:
    Image.fromarray(np.full((4, 5), 65535, np.int32), "I").save(tmp_path / "i.tif")
    assert np.all(load_image(tmp_path / "i.tif") == 255)
    Image.fromarray(np.full((4, 5), 0.5, np.float32), "F").save(tmp_path / "f.tif")
    assert np.all(load_image(tmp_path / "f.tif") == 128)


def test_bilevel_image(tmp_path: Path) -> None:
    Image.fromarray(np.eye(8, dtype=bool)).save(tmp_path / "b.png")
    img = load_image(tmp_path / "b.png")
    assert img[0, 0].tolist() == [255, 255, 255] and img[0, 1].tolist() == [0, 0, 0]


def test_rgba_composited_over_neutral_background(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)    # opaque red
    rgba[0, 1] = (255, 0, 0, 0)      # fully transparent: background, not red and not black
    rgba[0, 2] = (255, 255, 255, 128)  # half-transparent white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img, info = load_image(tmp_path / "a.png", return_info=True)
    assert info.had_alpha
    assert img[0, 0].tolist() == [0, 0, 255]
    assert img[0, 1].tolist() == list(DEFAULT_BACKGROUND)
    assert img[0, 2].tolist() == [192, 192, 192]  # (255*128 + 128*127) / 255 = 191.5 -> 192
    assert img[1, 0].tolist() == list(DEFAULT_BACKGROUND)  # transparent black
    white = load_image(tmp_path / "a.png", background=(255, 255, 255))
    assert white[0, 1].tolist() == [255, 255, 255]


def test_grey_alpha_and_palette_transparency(tmp_path: Path) -> None:
    la = np.zeros((2, 2, 2), np.uint8)
    la[0, 0] = (200, 255)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    img = load_image(tmp_path / "la.png")
    assert img[0, 0].tolist() == [200] * 3 and img[1, 1].tolist() == list(DEFAULT_BACKGROUND)

    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((1, 1), 1)
    pal.save(tmp_path / "p.png", transparency=0)
    pal.save(tmp_path / "p.gif", transparency=0)
    for name in ("p.png", "p.gif"):
        img = load_image(tmp_path / name)
        assert img[1, 1].tolist() == [0, 255, 0], name
        assert img[0, 0].tolist() == list(DEFAULT_BACKGROUND), name


def test_palette_without_transparency(tmp_path: Path) -> None:
    im = Image.fromarray(_asymmetric()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    im.save(tmp_path / "p.bmp")
    img = load_image(tmp_path / "p.bmp")
    assert np.array_equal(img, np.asarray(im.convert("RGB"))[..., ::-1])


def test_cmyk_jpeg(tmp_path: Path) -> None:
    Image.fromarray(_asymmetric()).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    img, info = load_image(tmp_path / "c.jpg", return_info=True)
    assert info.mode == "CMYK"
    with Image.open(tmp_path / "c.jpg") as im:
        ref = np.asarray(im.convert("RGB"))[..., ::-1]
    assert np.array_equal(img, ref)
    assert img[2, 2, 2] > 180 and img[2, 2, 0] < 90  # still red


@pytest.mark.parametrize("ext", ["png", "bmp", "tiff", "webp", "ppm"])
def test_lossless_formats_round_trip(tmp_path: Path, ext: str) -> None:
    rgb = _asymmetric()
    p = tmp_path / f"x.{ext}"
    Image.fromarray(rgb).save(p, **({"lossless": True} if ext == "webp" else {}))
    assert np.array_equal(load_image(p), rgb[..., ::-1])


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100)
    assert load_image(tmp_path / "a.gif")[0, 0].tolist() == [0, 0, 255]


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------
def _one_line_naming(exc: pytest.ExceptionInfo[InputError], name: str) -> None:
    msg = str(exc.value)
    assert name in msg and "\n" not in msg


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found") as e:
        load_image(tmp_path / "nope.jpg")
    _one_line_naming(e, "nope.jpg")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder") as e:
        load_image(tmp_path)
    _one_line_naming(e, str(tmp_path))


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="empty") as e:
        load_image(tmp_path / "empty.jpg")
    _one_line_naming(e, "empty.jpg")


def test_random_bytes_named_jpg(tmp_path: Path) -> None:
    (tmp_path / "noise.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    with pytest.raises(InputError, match="not an image") as e:
        load_image(tmp_path / "noise.jpg")
    _one_line_naming(e, "noise.jpg")


@pytest.mark.parametrize("name", ["multi_face.jpg", "Image_with_alpha.png"])
def test_truncated_file_is_a_clear_error(samples: Path, tmp_path: Path, name: str) -> None:
    data = (samples / name).read_bytes()
    p = tmp_path / f"half_{name}"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated") as e:
        load_image(p)
    _one_line_naming(e, p.name)


def test_corrupt_header(tmp_path: Path, samples: Path) -> None:
    data = bytearray((samples / "single_face.jpg").read_bytes())
    data[2:200] = bytes(198)
    (tmp_path / "bad.jpg").write_bytes(bytes(data))
    with pytest.raises(InputError) as e:
        load_image(tmp_path / "bad.jpg")
    _one_line_naming(e, "bad.jpg")


# ------------------------------------------------------------------------------------------------
# huge images
# ------------------------------------------------------------------------------------------------
def test_huge_jpeg_is_downscaled_while_decoding(huge_jpeg: Path) -> None:
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    img, info = load_image(huge_jpeg, max_pixels=4_000_000, return_info=True)
    _check_bgr(img)
    assert info.orig_size == (30000, 30000)
    assert img.shape == (2000, 2000, 3) and info.scale == pytest.approx(2000 / 30000)
    assert np.all(img == 128)
    # a full decode would need 900 MB (grey) + 2.7 GB (BGR); the 1/8 DCT-scaled decode needs ~60 MB
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mb < 500, f"peak memory grew by {grown_mb:.0f} MB: the image was decoded at full size"


def test_huge_png_is_refused_clearly(huge_png: Path) -> None:
    with pytest.raises(InputError, match="too large") as e:
        load_image(huge_png)
    _one_line_naming(e, huge_png.name)
    assert "30000x30000" in str(e.value)


# ------------------------------------------------------------------------------------------------
# to_bgr
# ------------------------------------------------------------------------------------------------
def test_to_bgr_shapes_and_dtypes() -> None:
    g = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for a in (g, g[..., None]):
        out = to_bgr(a)
        assert out.shape == (3, 4, 3) and np.array_equal(out[..., 1], g)
    bgr = np.random.default_rng(1).integers(0, 256, (5, 6, 3), np.uint8)
    assert to_bgr(bgr) is bgr  # already fine: no copy
    assert np.array_equal(to_bgr(bgr[..., ::-1], rgb=True), bgr)
    assert to_bgr(bgr[:, ::2]).flags.c_contiguous
    assert to_bgr(np.full((2, 2), 65535, np.uint16)).max() == 255
    assert to_bgr(np.full((2, 2, 3), 257 * 9, np.uint16))[0, 0].tolist() == [9, 9, 9]
    assert to_bgr(np.full((2, 2), 0.5, np.float32))[0, 0].tolist() == [128, 128, 128]
    assert to_bgr(np.ones((2, 2), bool))[0, 0].tolist() == [255, 255, 255]
    assert to_bgr(np.full((2, 2), 7, np.int64))[0, 0].tolist() == [7, 7, 7]


def test_to_bgr_accepts_pillow_images() -> None:
    rgb = _asymmetric()
    assert np.array_equal(to_bgr(Image.fromarray(rgb)), rgb[..., ::-1])
    assert to_bgr(Image.new("LA", (2, 2), (50, 0)))[0, 0].tolist() == list(DEFAULT_BACKGROUND)


def test_to_bgr_alpha() -> None:
    bgra = np.zeros((1, 2, 4), np.uint8)
    bgra[0, 0] = (255, 0, 0, 255)
    out = to_bgr(bgra)
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 1].tolist() == list(DEFAULT_BACKGROUND)
    assert to_bgr(bgra, rgb=True)[0, 0].tolist() == [0, 0, 255]
    assert to_bgr(bgra, background=(0, 0, 255))[0, 1].tolist() == [0, 0, 255]


@pytest.mark.parametrize("bad", [
    np.zeros((0, 3, 3), np.uint8), np.zeros((4, 4, 5), np.uint8), np.zeros(10, np.uint8),
    np.full((2, 2), 255.0), np.full((2, 2), -5, np.int16), np.array([["a"]], dtype=object),
])
def test_to_bgr_rejects_bad_arrays(bad: np.ndarray) -> None:
    with pytest.raises(InputError):
        to_bgr(bad)
