"""Damaged videos and videos read in parts: damaged stretches are skipped and counted, parts of one pass add up."""

from __future__ import annotations

from pathlib import Path

import pytest

import ferkit
from ferkit import pipeline
from ferkit.errors import InputError
from ferkit.io import iter_frames
from ferkit.io.video import FrameStream

WOLF = "WolfgangLanger_Pexels.mp4"  # H.264 640x360, 24000/1001 fps, 472 frames, 19.69 s


@pytest.fixture
def zeroed_middle(samples: Path, tmp_path: Path) -> Path:
    """The sample with 100 KB zeroed in the middle of the file: 36 packets in a row cannot be decoded."""
    data = bytearray((samples / WOLF).read_bytes())
    n = len(data)
    data[n // 2:n // 2 + 100_000] = bytes(100_000)
    out = tmp_path / "wl_damaged.mp4"
    out.write_bytes(data)
    return out


def test_long_damaged_stretch_is_skipped_and_the_rest_read(samples: Path, zeroed_middle: Path) -> None:
    whole = {round(f.time_s, 6) for f in iter_frames(samples / WOLF)}
    stream = iter_frames(zeroed_middle)
    frames = list(stream)
    times = [f.time_s for f in frames]
    assert stream.complete and stream.error is None and stream.stopped_at_s == pytest.approx(19.69, abs=0.05)
    assert stream.frames_lost == stream.decode_errors > 25  # more than the old limit of bad packets in a row
    assert len(frames) + stream.frames_lost == 472
    # most frames after the damaged stretch are analysed, at their exact times; frame numbers count decoded frames
    gap, damaged_to = max((b - a, b) for a, b in zip(times, times[1:]))
    assert gap > 1.0 and 9.0 < damaged_to < 12.0 and times[-1] > 19.5
    after = [t for t in times if t >= damaged_to]
    assert len(after) > 0.95 * (19.7 - damaged_to) * 24000 / 1001
    assert {round(t, 6) for t in times} <= whole
    assert [f.index for f in frames] == list(range(len(frames)))
    assert "36 damaged frames skipped" in stream.summary()
    # ranges of one video add up to the one-pass count
    first, second = iter_frames(zeroed_middle, end=9.0), iter_frames(zeroed_middle, start=9.0)
    n = sum(1 for _ in first) + sum(1 for _ in second)
    assert n == len(frames) and first.frames_lost + second.frames_lost == stream.frames_lost


def test_video_damaged_to_the_end_stops_with_the_decoding_error(samples: Path, tmp_path: Path) -> None:
    data = bytearray((samples / WOLF).read_bytes())  # 'moov' at the start: zero everything after 40 %
    cut = int(len(data) * 0.4)
    data[cut:] = bytes(len(data) - cut)
    bad = tmp_path / "tail.mp4"
    bad.write_bytes(data)
    stream = iter_frames(bad)
    frames = list(stream)
    assert 100 < len(frames) < 300 and not stream.complete and stream.frames_lost > 25
    assert "decoding failed" in (stream.error or "")
    assert f"analysed up to {stream.stopped_at_s:.1f} s" in stream.summary()


def test_garbage_video_data_still_fails_at_once(samples: Path, tmp_path: Path) -> None:
    data = bytearray((samples / WOLF).read_bytes())  # the container is fine, no frame can be decoded
    start = data.find(b"mdat") + 4
    data[start:] = bytes(len(data) - start)
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(data)
    with pytest.raises(InputError, match="garbage.mp4"):
        iter_frames(bad)


def _one_pass(path: Path, fps: float) -> list[tuple[int, float]]:
    return [(f.index, round(f.time_s, 6)) for f in iter_frames(path, fps=fps)]


@pytest.mark.parametrize("fps", [45.0, 1000.0, 10000.0])
def test_grid_parts_above_the_video_rate_give_each_frame_once(samples: Path, fps: float) -> None:
    """Parts of an fps grid (as the time ranges of several processes read them) give the frames of one pass once
    each, also parts whose points all lie after the last frame (the video ends at 2.37 s, its grid at 2.4 s)."""
    video = samples / "single_face.mp4"
    native, duration = 30.0, 2.4
    total = int(duration * fps)
    margin = 1.5 / native
    got: list[tuple[int, float]] = []
    bounds = [0, total // 2, *range(total * 9 // 10, total, max(1, total // 200)), total]  # small parts at the end
    for lo, hi in zip(bounds, bounds[1:]):
        last = hi == total
        start = max(0.0, (lo - 1) / fps - margin) if lo else None
        end = None if last else (hi - 1) / fps + margin
        with FrameStream(video, fps=fps, start=start, end=end, grid=(0.0, lo, None if last else hi)) as part:
            got += [(f.index, round(f.time_s, 6)) for f in part]
    assert got == _one_pass(video, fps) and [i for i, _ in got] == list(range(72))


@pytest.mark.parametrize("fps", [100.0, 10000.0])
def test_split_plan_above_the_video_rate(samples: Path, monkeypatch: pytest.MonkeyPatch, fps: float) -> None:
    """The time ranges planned for 2 processes give each frame once, as one pass does; above the video's rate a
    range is sized in frames (not in grid points: 10000 fps does not make ranges of 3 frames)."""
    video = samples / WOLF
    info = ferkit.io.probe_video(video)
    with ferkit.Analyzer(fps=fps, workers=2) as a:
        tasks = a._chunks(0, str(video), info, 1, 2)
        monkeypatch.setattr(pipeline, "CHUNK_MIN_FRAMES", 4)
        monkeypatch.setattr(pipeline, "CHUNK_MAX_FRAMES", 16)
        small = a._chunks(0, str(video), info, 1, 2)
    assert tasks is not None and 2 <= len(tasks) <= 12
    assert small is not None and len(small) >= 25
    one = _one_pass(video, fps)
    for plan in (tasks, small):
        got: list[tuple[int, float]] = []
        for t in plan:
            with FrameStream(t.path, fps=t.fps, start=t.start, end=t.end, grid=t.grid) as part:
                got += [(f.index, round(f.time_s, 6)) for f in part]
        assert got == one and len(one) == 472


def test_analyzer_two_workers_far_above_the_video_rate(samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Analyzer(fps=10000)`` with 2 processes: the frames and times of one process, none twice."""
    monkeypatch.setattr(pipeline, "CHUNK_MIN_FRAMES", 6)
    video = samples / "single_face.mp4"
    with ferkit.Analyzer(fps=10000, workers=1) as a:
        one = a.analyze(video)
    with ferkit.Analyzer(fps=10000, workers=2) as a:
        assert len(a._chunks(0, str(video), ferkit.io.probe_video(video), 1, 2) or []) >= 3
        two = a.analyze(video)
    assert len(one) == 72 and list(two.frames) == list(one.frames) == list(range(72))
    assert two.to_pandas()["time_s"].tolist() == one.to_pandas()["time_s"].tolist()
