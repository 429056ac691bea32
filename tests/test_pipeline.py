"""The analysis pipeline on the sample media: quality bars, inputs, video sampling, parallel ranges, tracking."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import ferkit
import ferkit.pipeline as pipeline
from ferkit import Analyzer
from ferkit.labels import EMOTIONS
from ferkit.results import FaceTable, columns

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "samples"
SINGLE_FACE_PHOTOS = ["single_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg",
                      "45-m7-di-ph.jpg", "BWPictureHuman.jpg", "Image_with_alpha.png"]


@pytest.fixture(scope="module")
def samples() -> Path:
    if not (SAMPLES / "multi_face.jpg").is_file():
        pytest.skip(f"sample media not found at {SAMPLES}")
    return SAMPLES


@pytest.fixture(scope="module")
def az() -> Analyzer:
    with Analyzer(workers=1) as a:
        yield a


def face_frames(res: ferkit.AnalysisResults) -> list[int]:
    return sorted(set(res.frames.tolist()))


# ------------------------------------------------------------------------------------------------ quality bars
def test_multi_face_photo_has_five_faces(az: Analyzer, samples: Path) -> None:
    res = az.analyze(samples / "multi_face.jpg")
    assert len(res) == 5
    assert res.statuses[0].status == "ok" and res.statuses[0].faces == 5
    assert sorted(res.face_ids.tolist()) == [0, 1, 2, 3, 4]
    # five distinct, face-sized boxes inside the 1000x667 photo
    b = res.boxes
    assert (b[:, 2] > 60).all() and (b[:, 2] < 160).all()
    centres = b[:, :2] + b[:, 2:] / 2
    d = np.linalg.norm(centres[:, None] - centres[None], axis=2) + np.eye(5) * 1e3
    assert d.min() > 60
    assert (res.emotions == "happy").sum() >= 4  # five smiling people


def test_small_faces_in_a_large_photo(az: Analyzer, samples: Path) -> None:
    """Faces of ~100 px in a 3000 px photo are found by the tiled search (the whole image alone misses them)."""
    canvas = np.full((2000, 3000, 3), 90, np.uint8)
    canvas[1000:1667, 1500:2500] = cv2.imread(str(samples / "multi_face.jpg"))
    res = az.analyze(canvas)
    assert len(res) == 5
    assert (res.boxes[:, 0] > 1500).all() and (res.boxes[:, 1] > 1000).all()


@pytest.mark.parametrize("name", SINGLE_FACE_PHOTOS)
def test_single_face_photos(az: Analyzer, samples: Path, name: str) -> None:
    res = az.analyze(samples / name)
    assert len(res) == 1, f"{name}: {len(res)} faces"
    row = res[0]
    assert row.det_score > 0.5 and row.frame == 0 and row.time_s == 0.0
    assert abs(sum(row.probabilities.values()) - 1) < 1e-4
    assert row.emotion in EMOTIONS and row.sentiment in ("negative", "neutral", "positive")


def test_expressions_on_posed_photos(az: Analyzer, samples: Path) -> None:
    res = az.analyze([samples / "0-f1-su-ph.jpg", samples / "0-f15-hao-ph.jpg", samples / "single_face.jpg"])
    assert list(res.emotions) == ["surprise", "happy", "happy"]
    assert res.sentiment_scores[1] > 0.5


def test_no_face_in_mountain_picture(az: Analyzer, samples: Path) -> None:
    res = az.analyze(samples / "free-mountain-vector-01.jpg")
    assert len(res) == 0 and res.statuses[0].status == "no_face" and res.ok


def test_no_face_in_no_face_video(az: Analyzer, samples: Path) -> None:
    """BlazeFace scores the title letters 0.45-0.63: the mesh's face presence rejects them."""
    res = az.analyze(samples / "no_face.mp4")
    st = res.statuses[0]
    assert len(res) == 0 and st.status == "no_face" and st.frames >= 90


def test_no_face_video_every_frame_detection(samples: Path) -> None:
    with Analyzer(workers=1, detect_every=1) as a:
        assert len(a.analyze(samples / "no_face.mp4")) == 0


@pytest.mark.parametrize(("name", "with_face"), [("face_noface.mov", range(0, 72)),
                                                  ("noface_face.mov", range(96, 168))])
def test_faces_only_in_frames_that_have_one(az: Analyzer, samples: Path, name: str, with_face: range) -> None:
    # these clips are single_face.mp4 and no_face.mp4 (with its title letters) put end to end
    res = az.analyze(samples / name)
    frames = face_frames(res)
    assert set(frames) <= set(with_face), f"faces outside {with_face}: {sorted(set(frames) - set(with_face))}"
    assert len(frames) >= len(with_face) - 2
    assert len(res) == len(frames)  # one face per frame
    assert res.statuses[0].frames == 169


def test_video_rows_and_timestamps(az: Analyzer, samples: Path) -> None:
    res = az.analyze(samples / "single_face.mp4")
    assert face_frames(res) == list(range(72))
    np.testing.assert_allclose(res.times, res.frames / 30.0, atol=1e-3)
    assert res.statuses[0].status == "ok" and res.statuses[0].stopped_at_s == pytest.approx(2.4, abs=0.05)
    assert (res.emotions == "happy").mean() > 0.5


def test_video_sampling_every_and_fps(samples: Path) -> None:
    with Analyzer(workers=1, every=5) as a:
        assert face_frames(a.analyze(samples / "single_face.mp4")) == list(range(0, 72, 5))
    with Analyzer(workers=1, fps=10) as a:
        res = a.analyze(samples / "single_face.mp4")
        assert face_frames(res) == list(range(0, 72, 3))
    with Analyzer(workers=1, start=1.0, end=2.0) as a:
        res = a.analyze(samples / "single_face.mp4")
        assert face_frames(res) == list(range(30, 60))


def test_tracking_matches_every_frame_detection(az: Analyzer, samples: Path) -> None:
    tracked = az.analyze(samples / "single_face.mp4")
    with Analyzer(workers=1, detect_every=1) as a:
        every = a.analyze(samples / "single_face.mp4")
    assert len(tracked) == len(every) == 72
    iou = pipeline._iou(tracked.boxes, every.boxes).diagonal()
    assert iou.mean() > 0.95 and iou.min() > 0.85
    assert (tracked.emotions == every.emotions).mean() > 0.9


@pytest.fixture(scope="module")
def group_video(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-frame pan over the group photo (five faces moving 3 px per frame)."""
    import av

    img = cv2.imread(str(samples / "multi_face.jpg"))
    path = tmp_path_factory.mktemp("video") / "group.mp4"
    with av.open(str(path), "w") as c:
        st = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=25)
        st.width, st.height, st.pix_fmt = 800, 600, "yuv420p"
        for i in range(40):
            frame = np.ascontiguousarray(img[40:640, 3 * i:3 * i + 800])
            for packet in st.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                c.mux(packet)
        for packet in st.encode():
            c.mux(packet)
    return path


def test_following_several_faces(az: Analyzer, group_video: Path) -> None:
    res = az.analyze(group_video)
    per_frame = np.bincount(res.frames, minlength=40)
    assert (per_frame == 5).mean() > 0.9 and per_frame.max() == 5  # no duplicates
    with Analyzer(workers=1, max_faces=2) as a:
        two = a.analyze(group_video)
    assert np.bincount(two.frames, minlength=40).max() == 2


def test_parallel_ranges_equal_one_pass(samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A video cut into time ranges for 2 processes gives the same frames (none lost, none twice)."""
    monkeypatch.setattr(pipeline, "CHUNK_MIN_FRAMES", 6)
    video = samples / "single_face.mp4"
    for opts, expect in (({}, range(72)), ({"every": 3}, range(0, 72, 3)), ({"fps": 7.5}, range(0, 72, 4))):
        with Analyzer(workers=2, **opts) as a:
            tasks = a._chunks(0, str(video), ferkit.io.probe_video(video), 6 if not opts else 1, 2)
            assert tasks is not None and len(tasks) >= 2
            res = a.analyze(video)
        assert face_frames(res) == list(expect), opts
        assert len(res) == len(expect) and res.statuses[0].frames == len(expect)
    # Grid points between frames (and a grid faster than the video): each range sees the frames on both sides
    # of its points, so the nearest frame is chosen as in one pass, and no frame comes twice
    for opts in ({"fps": 9.0}, {"fps": 11.0, "start": 0.3}, {"fps": 45.0}):
        with Analyzer(workers=1, **opts) as a:
            one = face_frames(a.analyze(video))
        with Analyzer(workers=2, **opts) as a:
            assert len(a._chunks(0, str(video), ferkit.io.probe_video(video), 1, 2) or []) >= 2
            two = face_frames(a.analyze(video))
        assert two == one and len(set(two)) == len(two), opts


def test_several_videos_in_two_processes(samples: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.mp4").write_bytes(b"not a video" * 50)
    vids = [samples / "single_face.mp4", tmp_path / "bad.mp4", samples / "no_face.mp4", samples / "single_face.mp4"]
    with Analyzer(workers=2, every=2) as a:
        res = a.analyze(vids)
    assert [s.status for s in res.statuses] == ["ok", "failed", "no_face", "ok"]
    assert list(res.frames) == list(range(0, 72, 2)) * 2
    assert [s.frames for s in res.statuses] == [36, 0, 48, 36]


# ------------------------------------------------------------------------------------------------ inputs
def test_numpy_and_pil_inputs(az: Analyzer, samples: Path) -> None:
    from PIL import Image

    bgr = cv2.imread(str(samples / "single_face.jpg"))
    res = az.analyze(bgr)
    assert len(res) == 1 and res[0].source == "<array>"
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    assert len(az.analyze(grey)) == 1
    rgba = np.dstack([bgr[..., ::-1], np.full(bgr.shape[:2], 255, np.uint8)])
    assert len(az.analyze(Image.fromarray(rgba, "RGBA"))) == 1
    assert len(az.analyze(bgr.astype(np.uint16) * 257)) == 1  # 16-bit
    both = az.analyze(np.stack([bgr, bgr]))  # a batch of images
    assert len(both) == 2 and [s.source for s in both.statuses] == ["<array 0>", "<array 1>"]
    mixed = az.analyze([bgr, samples / "single_face.jpg"])
    assert len(mixed) == 2
    np.testing.assert_allclose(mixed.probabilities[0], mixed.probabilities[1], atol=1e-4)


def test_exif_rotated_photo(az: Analyzer, samples: Path, tmp_path: Path) -> None:
    from PIL import Image

    im = Image.open(samples / "single_face.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": store the pixels turned the other way
    im.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "rot.jpg", exif=exif.tobytes())
    res = az.analyze(tmp_path / "rot.jpg")
    assert len(res) == 1 and res[0].emotion == "happy"
    x, y, w, h = res[0].box
    assert abs(x - 164) < 15 and abs(y - 178) < 15  # same box as in the upright photo


def test_face_crop_input_auto_and_forced(az: Analyzer, samples: Path) -> None:
    img = cv2.imread(str(samples / "single_face.jpg"))
    res = az.analyze(img)
    x, y, w, h = (int(v) for v in res.boxes[0])
    crop48 = cv2.resize(img[y:y + h, x:x + w], (48, 48), interpolation=cv2.INTER_AREA)
    r = az.analyze(crop48)
    assert len(r) == 1 and tuple(r.boxes[0]) == (0, 0, 48, 48) and np.isnan(r.det_scores[0])
    assert r[0].emotion == "happy"
    crop120 = cv2.resize(img[y - 10:y + h + 10, x - 10:x + w + 10], (120, 120))
    r = az.analyze(crop120)
    assert len(r) == 1 and tuple(r.boxes[0]) == (0, 0, 120, 120)
    with Analyzer(workers=1, detect=False) as forced:
        r = forced.analyze(samples / "free-mountain-vector-01.jpg")
        assert len(r) == 1 and tuple(r.boxes[0]) == (0, 0, 1920, 1080)


def test_landmarks_option(samples: Path) -> None:
    with Analyzer(workers=1, landmarks=True) as a:
        res = a.analyze(samples / "multi_face.jpg")
        lm = res.landmarks
        assert lm is not None and lm.shape == (5, 468, 2) and not np.isnan(lm).any()
        # the mesh lies in its face box
        b = res.boxes
        inside = (lm[..., 0] > b[:, None, 0] - 0.2 * b[:, None, 2]) & (lm[..., 0] < b[:, None, 0] + 1.2 * b[:, None, 2])
        assert inside.mean() > 0.95
        df = res.to_pandas()
        assert list(df.columns) == columns(EMOTIONS, landmarks=True)
        bw = a.analyze(samples / "BWPictureHuman.jpg")  # the mesh fails on this face: no points
        assert len(bw) == 1 and bw[0].landmarks is None


def test_folder_input_and_order(az: Analyzer, samples: Path, tmp_path: Path) -> None:
    for name in ("b10.jpg", "b2.jpg"):
        (tmp_path / name).write_bytes((samples / "single_face.jpg").read_bytes())
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "m.jpg").write_bytes((samples / "multi_face.jpg").read_bytes())
    (tmp_path / "notes.txt").write_text("not media")
    res = az.analyze(tmp_path)
    assert [Path(s.source).name for s in res.statuses] == ["b2.jpg", "b10.jpg", "m.jpg"]
    assert len(res) == 7 and res.ok


def test_many_photos_in_two_processes(samples: Path, tmp_path: Path) -> None:
    for i in range(6):
        (tmp_path / f"p{i}.jpg").write_bytes((samples / SINGLE_FACE_PHOTOS[i % 5]).read_bytes())
    with Analyzer(workers=2) as a:
        res = a.analyze(tmp_path)
    assert [Path(s.source).name for s in res.statuses] == [f"p{i}.jpg" for i in range(6)]
    assert len(res) == 6 and all(s.faces == 1 for s in res.statuses)


def test_analyze_function_and_sentiment_map(samples: Path) -> None:
    res = ferkit.analyze(samples / "0-f1-su-ph.jpg", workers=1)
    assert res[0].emotion == "surprise" and res[0].sentiment == "neutral"
    deb = ferkit.analyze(samples / "0-f1-su-ph.jpg", workers=1, sentiment_map="debate")
    assert deb[0].sentiment == "positive"  # surprise is positive in the debate mapping
    with pytest.raises(ferkit.errors.InputError, match="sentiment map"):
        Analyzer(sentiment_map="nope")


def test_tracker_hook(samples: Path) -> None:
    class CountingTracker:
        def __init__(self) -> None:
            self.resets: list[str] = []

        def reset(self, source: str) -> None:
            self.resets.append(source)

        def assign(self, table: FaceTable) -> np.ndarray:
            return np.full(len(table), 7)

    tr = CountingTracker()
    with Analyzer(workers=1, tracker=tr) as a:
        res = a.analyze([samples / "single_face.mp4", samples / "single_face.jpg"])
    assert (res.face_ids == 7).all() and len(tr.resets) == 2


def test_inference_does_not_import_torch(samples: Path) -> None:
    import subprocess
    import sys

    code = ("import sys, ferkit; r = ferkit.analyze(sys.argv[1], workers=1); "
            "assert len(r) == 1; assert 'torch' not in sys.modules, 'torch imported'")
    src = Path(__file__).resolve().parents[1] / "src"
    subprocess.run([sys.executable, "-c", code, str(samples / "single_face.jpg")], check=True,
                   env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"})


def test_progress_bar_on_a_terminal_only(az: Analyzer, samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    az.analyze(samples / "single_face.mp4", progress=True)
    assert "frame/s" in tty.getvalue() or "72/72" in tty.getvalue()
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    az.analyze(samples / "single_face.mp4", progress=True)
    assert pipe.getvalue() == ""


def test_downscaled_photo_reports_full_size_coordinates(samples: Path) -> None:
    """A photo over ``max_pixels`` is analysed smaller, but boxes and landmarks refer to the original."""
    from ferkit import Analyzer

    with Analyzer(landmarks=True) as full, Analyzer(landmarks=True, max_pixels=100_000) as small:
        a = full.analyze(samples / "single_face.jpg").tables[0]
        b = small.analyze(samples / "single_face.jpg").tables[0]
    assert len(a) == len(b) == 1
    assert np.allclose(a.boxes, b.boxes, atol=0.06 * a.boxes[0, 2])  # within 6 % of the face size
    assert np.nanmax(np.abs(a.landmarks - b.landmarks)) < 0.06 * a.boxes[0, 2]
