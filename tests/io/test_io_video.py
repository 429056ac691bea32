"""Tests of ferkit.io.video: iter_frames / probe_video / FrameStream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ferkit.errors import InputError
from ferkit.io import Frame, VideoInfo, iter_frames, probe_video

WOLF = "WolfgangLanger_Pexels.mp4"  # H.264 640x360, 24000/1001 fps, 472 frames, 19.69 s
WOLF_PERIOD = 1001 / 24000


@pytest.fixture(scope="module")
def wolf_frames(samples: Path) -> tuple[list[tuple[int, float]], object]:
    """(index, time) of every frame of the sample video, and the finished stream."""
    stream = iter_frames(samples / WOLF)
    out = []
    for f in stream:
        assert f.image.shape == (360, 640, 3) and f.image.dtype == np.uint8 and f.image.flags.c_contiguous
        out.append((f.index, f.time_s))
    return out, stream


def test_probe_sample(samples: Path) -> None:
    info = probe_video(samples / WOLF)
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height) == (640, 360)
    assert info.fps == pytest.approx(23.976, abs=1e-3)
    assert info.n_frames == 472
    assert info.duration_s == pytest.approx(19.69, abs=0.01)
    assert info.codec == "h264" and info.backend == "pyav" and info.rotation == 0


def test_all_frames_with_exact_timestamps(wolf_frames: tuple[list[tuple[int, float]], object]) -> None:
    frames, stream = wolf_frames
    assert len(frames) == 472
    assert [i for i, _ in frames] == list(range(472))
    times = np.array([t for _, t in frames])
    assert np.all(np.diff(times) > 0)
    assert np.allclose(times, np.arange(472) * WOLF_PERIOD, atol=1e-6)
    assert stream.complete and stream.finished and stream.error is None
    assert stream.frames_decoded == stream.frames_yielded == 472
    assert stream.stopped_at_s == pytest.approx(19.685, abs=0.01)
    assert "472 frames" in stream.summary()


def test_every_nth_frame(samples: Path) -> None:
    frames = list(iter_frames(samples / WOLF, every=10))
    assert [f.index for f in frames] == list(range(0, 472, 10))
    assert all(f.time_s == pytest.approx(f.index * WOLF_PERIOD, abs=1e-6) for f in frames)


def test_fps_grid_sampling(samples: Path) -> None:
    stream = iter_frames(samples / WOLF, fps=5)
    frames = list(stream)
    # grid 0, 0.2, ..., 19.6 s (the video ends at 19.69 s): 99 points, each with its nearest frame
    assert len(frames) == 99
    idx = [f.index for f in frames]
    assert idx == sorted(set(idx))
    for k, f in enumerate(frames):
        assert abs(f.time_s - k / 5) <= WOLF_PERIOD / 2 + 1e-9
    assert stream.complete


def test_fps_above_video_rate_never_repeats(samples: Path) -> None:
    frames = list(iter_frames(samples / "single_face.mp4", fps=100))
    assert [f.index for f in frames] == list(range(72))


def test_start_end(samples: Path) -> None:
    stream = iter_frames(samples / WOLF, start=10.0, end=12.0)
    frames = list(stream)
    assert frames[0].index == 240 and frames[-1].index == 287 and len(frames) == 48
    assert all(10.0 <= f.time_s < 12.0 for f in frames)
    assert all(f.time_s == pytest.approx(f.index * WOLF_PERIOD, abs=1e-6) for f in frames)
    assert stream.complete


def test_variable_frame_rate_start_gives_true_frame_numbers(samples: Path) -> None:
    """face_noface.mov runs at 30 fps, then slower (average 26.4): after a seek, time x rate is no frame number."""
    assert probe_video(samples / "face_noface.mov").vfr and not probe_video(samples / WOLF).vfr
    every = {round(f.time_s, 4): f.index for f in iter_frames(samples / "face_noface.mov")}
    late = list(iter_frames(samples / "face_noface.mov", start=2.0, end=3.0))
    assert late[0].index == 60 and late[0].time_s == pytest.approx(2.0, abs=1e-3)
    assert all(every[round(f.time_s, 4)] == f.index for f in late)


def test_other_samples_decode(samples: Path) -> None:
    stream = iter_frames(samples / "no_face.mp4", every=5)
    frames = list(stream)
    assert stream.complete and stream.frames_decoded >= 90
    assert frames[0].image.shape == (540, 960, 3)
    hevc = iter_frames(samples / "face_noface.mov", fps=2)
    assert len(list(hevc)) == 13 and hevc.complete and hevc.info.codec == "hevc"


def test_truncated_video_stops_cleanly_and_reports(samples: Path, tmp_path: Path) -> None:
    data = (samples / WOLF).read_bytes()  # 'moov' at the start: the first 60% stays decodable
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    stream = iter_frames(cut)
    frames = list(stream)
    assert 150 < len(frames) < 472
    assert not stream.complete and stream.finished
    assert stream.stopped_at_s == pytest.approx(frames[-1].time_s + WOLF_PERIOD, abs=1e-6)
    assert 6.0 < stream.stopped_at_s < 18.0
    assert "truncated" in stream.error
    summary = stream.summary()
    assert f"analysed up to {stream.stopped_at_s:.1f} s of 19.7 s" in summary and "cut.mp4" in summary

    strict = iter_frames(cut, strict=True)
    got = 0
    with pytest.raises(InputError, match="analysed up to"):
        for _ in strict:
            got += 1
    assert got == len(frames)


def test_truncated_video_without_index_cannot_be_opened(samples: Path, tmp_path: Path) -> None:
    data = (samples / "single_face.mp4").read_bytes()  # 'moov' at the end: nothing to decode
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(InputError, match="cut.mp4"):
        iter_frames(cut)


@pytest.mark.parametrize("content", [b"this is not a video" * 100, b""])
def test_non_video_named_mp4(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "fake.mp4"
    p.write_bytes(content)
    with pytest.raises(InputError, match="fake.mp4") as e:
        iter_frames(p)
    assert "\n" not in str(e.value)
    with pytest.raises(InputError):
        probe_video(p)


def test_missing_video(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        iter_frames(tmp_path / "missing.mp4")


def test_bad_arguments(samples: Path) -> None:
    for kwargs in ({"every": 0}, {"fps": 0}, {"fps": 5, "every": 2}, {"start": -1}, {"start": 5, "end": 2}):
        with pytest.raises(ValueError):
            iter_frames(samples / WOLF, **kwargs)


def test_early_close_releases_the_file(samples: Path) -> None:
    with iter_frames(samples / WOLF) as stream:
        first = next(stream)
        assert isinstance(first, Frame) and first.index == 0
    assert list(stream) == []


def test_animated_gif(tmp_path: Path) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    frames = [Image.new("RGB", (31, 17), c) for c in colours]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=[100, 50, 200, 100], loop=0)
    stream = iter_frames(p)
    got = list(stream)
    assert stream.info.backend == "pillow" and stream.info.n_frames == 4
    assert [f.index for f in got] == [0, 1, 2, 3]
    assert [round(f.time_s, 6) for f in got] == [0.0, 0.1, 0.15, 0.35]
    assert [f.image[0, 0].tolist() for f in got] == [list(c[::-1]) for c in colours]
    assert got[0].image.shape == (17, 31, 3)
    assert [f.index for f in iter_frames(p, every=2)] == [0, 2]
    assert stream.complete


def test_animated_webp(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), (i * 60, 0, 0)) for i in range(4)]
    p = tmp_path / "anim.webp"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=40, lossless=True)
    got = list(iter_frames(p))
    assert len(got) == 4 and got[3].time_s == pytest.approx(0.12)
    assert got[2].image[0, 0].tolist() == [0, 0, 120]


def test_still_image_is_one_frame(samples: Path) -> None:
    got = list(iter_frames(samples / "single_face.jpg"))
    assert len(got) == 1 and got[0].index == 0 and got[0].time_s == 0.0


def test_odd_size_and_other_pixel_formats(tmp_path: Path, make_video: Callable[..., Path]) -> None:
    for codec, pix in (("ffv1", "yuv420p"), ("ffv1", "yuv444p"), ("mpeg4", "yuv420p")):
        p = make_video(tmp_path / f"odd_{codec}_{pix}.mkv", n=5, w=63, h=47, codec=codec, pix_fmt=pix)
        got = list(iter_frames(p))
        assert len(got) == 5, (codec, pix)
        img = got[0].image
        assert img.shape == (47, 63, 3) and img.flags.c_contiguous
        assert img[30, 5, 2] > 200 and img[30, 5, 1] < 60  # red left third (BGR: red is channel 2)
        assert img[5, 40, 1] > 200  # green top band


def test_phone_rotation_is_applied(tmp_path: Path, make_video: Callable[..., Path]) -> None:
    p = make_video(tmp_path / "rot.mp4", n=3, w=64, h=48, rotation=90)
    info = probe_video(p)
    assert (info.width, info.height) == (48, 64) and info.rotation == 270
    ours = next(iter(iter_frames(p))).image
    cap = cv2.VideoCapture(str(p))  # OpenCV applies the rotation too
    ok, ref = cap.read()
    cap.release()
    assert ok and ours.shape == ref.shape == (64, 48, 3)
    assert np.abs(ours.astype(int) - ref.astype(int)).mean() < 3
    assert iter_frames(p, autorotate=False).info.rotation == 0


def test_opencv_backend_agrees(samples: Path) -> None:
    stream = iter_frames(samples / "single_face.mp4", backend="opencv")
    got = [(f.index, f.time_s) for f in stream]
    ref = [(f.index, f.time_s) for f in iter_frames(samples / "single_face.mp4")]
    assert stream.info.backend == "opencv" and len(got) == len(ref) == 72
    assert [i for i, _ in got] == [i for i, _ in ref]
    assert np.allclose([t for _, t in got], [t for _, t in ref], atol=1e-3)
    assert stream.complete


def test_fast_colour_conversion_matches_reference(samples: Path) -> None:
    av = pytest.importorskip("av")
    with av.open(str(samples / WOLF)) as c:
        ref_frames = []
        for i, fr in enumerate(c.decode(video=0)):
            ref_frames.append(cv2.cvtColor(fr.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2BGR_I420))
            if i == 2:
                break
    ours = [f.image for f in iter_frames(samples / WOLF, end=0.1)]
    assert len(ours) == 3 and all(np.array_equal(a, b) for a, b in zip(ours, ref_frames, strict=True))
    cap = cv2.VideoCapture(str(samples / WOLF))
    ok, cv_img = cap.read()
    cap.release()
    assert ok and np.abs(cv_img.astype(int) - ours[0].astype(int)).mean() < 2  # same colours as OpenCV
