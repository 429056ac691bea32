"""Face detection: registry, Detections container, BlazeFace and MTCNN on the real sample media."""

from __future__ import annotations

import numpy as np
import pytest

from ferkit.errors import FerkitError, InputError
from ferkit.face import (
    BLAZEFACE_KEYPOINTS,
    BlazeFaceDetector,
    Detections,
    FaceDetector,
    create_detector,
    list_detectors,
    register_detector,
    weighted_nms,
)
from ferkit.face.detect import ssd_anchors

SINGLE_FACE_PHOTOS = (
    "single_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg",
    "BWPictureHuman.jpg", "Image_with_alpha.png",
)

# ------------------------------------------------------------------------------------------------ registry


def test_list_detectors_has_the_shipped_ones() -> None:
    names = list_detectors()
    assert {"blazeface", "blazeface_short", "mtcnn"} <= set(names)
    assert names == sorted(names)


def test_unknown_detector_lists_known_names() -> None:
    with pytest.raises(InputError) as err:
        create_detector("retinaface")
    msg = str(err.value)
    assert "retinaface" in msg
    for name in list_detectors():
        assert name in msg


def test_bad_options_are_input_errors() -> None:
    with pytest.raises(InputError, match="bad options"):
        create_detector("blazeface", no_such_option=1)
    with pytest.raises(InputError, match="score_threshold"):
        create_detector("blazeface", score_threshold=1.5)
    with pytest.raises(InputError, match="max_faces"):
        create_detector("blazeface", max_faces=0)


def test_register_detector_and_duplicate_name() -> None:
    @register_detector("_test_dummy")
    class Dummy(FaceDetector):
        def detect_batch(self, images):
            return [Detections.empty() for _ in images]

    det = create_detector("_test_dummy", score_threshold=0.1)
    assert det.name == "_test_dummy" and "_test_dummy" in list_detectors()
    assert len(det.detect(np.zeros((8, 8, 3), np.uint8))) == 0
    with pytest.raises(FerkitError, match="already registered"):
        register_detector("blazeface")(Dummy)


# ------------------------------------------------------------------------------------------------ container


def test_detections_validation_and_access() -> None:
    boxes = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float64)
    kps = np.zeros((2, 6, 2))
    d = Detections(boxes, [0.9, 0.8], kps, BLAZEFACE_KEYPOINTS)
    assert d.boxes.dtype == np.float32 and d.scores.dtype == np.float32 and d.keypoints.dtype == np.float32
    assert len(d) == 2
    items = list(d)
    assert items[1].score == pytest.approx(0.8) and items[1].box.tolist() == [5, 6, 7, 8]
    assert items[0].keypoints.shape == (6, 2)
    assert len(d[1:]) == 1 and len(d[np.array([True, False])]) == 1 and len(d[0]) == 1
    np.testing.assert_allclose(d.xyxy[0], [1, 2, 4, 6])
    assert d.keypoint("nose_tip").shape == (2, 2)
    with pytest.raises(KeyError):
        d.keypoint("iris")
    with pytest.raises(InputError):
        Detections(np.zeros((2, 3)), [1, 2])
    with pytest.raises(InputError):
        Detections(boxes, [0.9])
    with pytest.raises(InputError):
        Detections(boxes, [0.9, 0.8], np.zeros((2, 6, 3)))
    with pytest.raises(InputError):
        Detections(boxes, [0.9, 0.8], kps, ("a", "b"))
    e = Detections.empty(BLAZEFACE_KEYPOINTS)
    assert len(e) == 0 and e.boxes.shape == (0, 4) and e.keypoints.shape == (0, 6, 2) and list(e) == []
    assert Detections([], []).boxes.shape == (0, 4)


def test_weighted_nms_blends_overlapping_boxes() -> None:
    xyxy = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float64)
    scores = np.array([0.6, 0.9, 0.7])
    values = np.concatenate([xyxy, np.arange(6).reshape(3, 2)], axis=1)
    v, s = weighted_nms(xyxy, scores, values, 0.3)
    assert s.tolist() == pytest.approx([0.9, 0.7])
    expected = (0.9 * values[1] + 0.6 * values[0]) / 1.5
    np.testing.assert_allclose(v[0], expected, rtol=1e-6)
    np.testing.assert_allclose(v[1], values[2])
    v0, s0 = weighted_nms(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 6)))
    assert len(s0) == 0 and v0.shape == (0, 6)


def test_anchor_counts_match_the_models() -> None:
    full = ssd_anchors(192, (4,), 0.0)
    short = ssd_anchors(128, (8, 16, 16, 16), 1.0)
    assert full.shape == (2304, 2) and short.shape == (896, 2)
    np.testing.assert_allclose(full[0], [0.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(short[512], [0.5 / 8, 0.5 / 8])  # first anchor of the 8x8 map
    assert (short[512:518] == short[512]).all()  # 6 anchors per cell there


# ------------------------------------------------------------------------------------------------ BlazeFace


def test_input_checks(detector: BlazeFaceDetector) -> None:
    with pytest.raises(InputError, match="uint8"):
        detector.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(InputError, match="shape"):
        detector.detect(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(InputError, match="numpy"):
        detector.detect("photo.jpg")  # type: ignore[arg-type]
    assert detector.detect_batch([]) == []
    assert len(detector.detect(np.zeros((1, 1, 3), np.uint8))) == 0


def test_five_faces_in_group_photo(detector: BlazeFaceDetector, load_image) -> None:
    img = load_image("multi_face.jpg")
    d = detector.detect(img)
    assert len(d) == 5
    assert d.keypoints.shape == (5, 6, 2) and d.keypoint_names == BLAZEFACE_KEYPOINTS
    assert (np.diff(d.scores) <= 0).all()  # best first
    h, w = img.shape[:2]
    assert (d.boxes[:, 2:] > 40).all() and (d.boxes[:, 2:] < 200).all()
    c = d.boxes[:, :2] + d.boxes[:, 2:] / 2
    assert ((c > 0) & (c < [w, h])).all()
    # boxes of distinct people barely overlap
    xy = d.xyxy
    for i in range(5):
        for j in range(i + 1, 5):
            iw = min(xy[i, 2], xy[j, 2]) - max(xy[i, 0], xy[j, 0])
            ih = min(xy[i, 3], xy[j, 3]) - max(xy[i, 1], xy[j, 1])
            assert min(iw, ih) <= 0 or iw * ih < 0.1 * d.boxes[i, 2] * d.boxes[i, 3]


@pytest.mark.parametrize("name", SINGLE_FACE_PHOTOS)
def test_one_face_in_single_face_photos(detector: BlazeFaceDetector, load_image, name: str) -> None:
    img = load_image(name)
    d = detector.detect(img)
    assert len(d) == 1, f"{name}: {len(d)} faces, scores {d.scores}"
    x, y, w, h = d.boxes[0]
    # key points inside the (slightly enlarged) box, eyes above the mouth
    kp = d.keypoints[0]
    assert ((kp[:4] > [x - 0.1 * w, y - 0.1 * h]) & (kp[:4] < [x + 1.1 * w, y + 1.1 * h])).all()
    assert max(kp[0, 1], kp[1, 1]) < kp[3, 1]


def test_grey_and_bgra_inputs_are_accepted(detector: BlazeFaceDetector, load_image) -> None:
    import cv2

    img = load_image("single_face.jpg")
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    assert len(detector.detect(grey)) == 1
    np.testing.assert_allclose(detector.detect(bgra).boxes, detector.detect(img).boxes, atol=1e-3)


def test_no_face_in_mountain_drawing(detector: BlazeFaceDetector, load_image) -> None:
    assert len(detector.detect(load_image("free-mountain-vector-01.jpg"))) == 0


def test_batch_equals_single_calls(detector: BlazeFaceDetector, load_image) -> None:
    names = ["multi_face.jpg", "free-mountain-vector-01.jpg", "45-m7-di-ph.jpg", "single_face.jpg"]
    imgs = [load_image(n) for n in names]
    batch = detector.detect_batch(imgs)
    for img, b in zip(imgs, batch):
        s = detector.detect(img)
        assert len(s) == len(b)
        np.testing.assert_allclose(s.boxes, b.boxes, atol=1e-2)
        np.testing.assert_allclose(s.keypoints, b.keypoints, atol=1e-2)


def test_min_face_size_and_max_faces(load_image) -> None:
    img = load_image("multi_face.jpg")
    assert len(create_detector(max_faces=2).detect(img)) == 2
    assert len(create_detector(min_face_size=500).detect(img)) == 0
    top = create_detector().detect(img).scores[:2]
    np.testing.assert_allclose(create_detector(max_faces=2).detect(img).scores, top)


def test_short_range_model_runs(load_image) -> None:
    d = create_detector("blazeface_short").detect(load_image("0-f15-hao-ph.jpg"))
    assert len(d) == 1 and d.keypoints.shape == (1, 6, 2)


# ------------------------------------------------------------------------------------------------ videos

# no_face.mp4 is an animated title ("Caminandes"). Frames 71-90 are left out of the zero-face test on purpose:
# there the stylised letters "Ca" (about 12-17 px in the 192 px model input) get BlazeFace scores of 0.45-0.63,
# around MediaPipe's default threshold 0.5. The tflite model run with ai-edge-litert scores them the same, so
# this is the model, not the port. Known false positive, pinned by the strict xfail below so that a fix shows.
NO_FACE_FRAMES = [*range(0, 71, 5), 91, 92, 93, 94]
KNOWN_FALSE_POSITIVE_FRAMES = [78, 82, 83, 89]


def test_no_face_video(detector: BlazeFaceDetector, read_frames) -> None:
    frames = read_frames("no_face.mp4", NO_FACE_FRAMES)
    counts = {i: len(d) for i, d in zip(frames, detector.detect_batch(list(frames.values())))}
    assert all(c == 0 for c in counts.values()), counts


@pytest.mark.xfail(strict=True, reason="BlazeFace full range fires on the stylised 'Ca' of the title (~0.6)")
def test_no_face_video_title_letters(detector: BlazeFaceDetector, read_frames) -> None:
    frames = read_frames("no_face.mp4", KNOWN_FALSE_POSITIVE_FRAMES)
    assert all(len(d) == 0 for d in detector.detect_batch(list(frames.values())))


def test_face_then_no_face_video(detector: BlazeFaceDetector, read_frames) -> None:
    # face_noface.mov: the face in frames 0-71, a black frame 72, the animated title after
    face = read_frames("face_noface.mov", [0, 1, 2, 3, 4, 5, 66, 68, 71])
    none = read_frames("face_noface.mov", [72, 73, 74, 164, 165, 166, 167, 168])
    assert [len(d) for d in detector.detect_batch(list(face.values()))] == [1] * len(face)
    assert [len(d) for d in detector.detect_batch(list(none.values()))] == [0] * len(none)


def test_no_face_then_face_video(detector: BlazeFaceDetector, read_frames) -> None:
    # noface_face.mov: the animated title in frames 0-95, the face in 96-167, a black last frame 168
    none = read_frames("noface_face.mov", [0, 1, 2, 3, 4, 5, 93, 94, 95, 168])
    face = read_frames("noface_face.mov", [96, 97, 98, 162, 164, 166, 167])
    assert [len(d) for d in detector.detect_batch(list(none.values()))] == [0] * len(none)
    assert [len(d) for d in detector.detect_batch(list(face.values()))] == [1] * len(face)


# ------------------------------------------------------------------------------------------------ MTCNN


def test_mtcnn_finds_the_five_faces(load_image, detector: BlazeFaceDetector) -> None:
    img = load_image("multi_face.jpg")
    d = create_detector("mtcnn").detect(img)
    assert len(d) == 5
    assert d.keypoints.shape == (5, 5, 2)
    # each MTCNN face matches a BlazeFace face (centres within half a box)
    ref = detector.detect(img)
    c_m = d.boxes[:, :2] + d.boxes[:, 2:] / 2
    c_b = ref.boxes[:, :2] + ref.boxes[:, 2:] / 2
    dist = np.linalg.norm(c_m[:, None] - c_b[None], axis=2).min(axis=1)
    assert (dist < ref.boxes[:, 2].min() / 2).all()
    # subject's right eye on the image left
    assert (d.keypoint("right_eye")[:, 0] < d.keypoint("left_eye")[:, 0]).all()


def test_mtcnn_no_face(load_image) -> None:
    d = create_detector("mtcnn").detect_batch([load_image("free-mountain-vector-01.jpg")])
    assert len(d) == 1 and len(d[0]) == 0


@pytest.mark.parametrize("size", [(3072, 3072), (4000, 3000), (3001, 2001), (700, 500)])
def test_shrink_maps_points_back_exactly(size):
    """pyrDown halvings shift content by half a pixel each: the map back to the image accounts for it."""
    from ferkit.face.detect import shrink_with_map

    w, h = size
    cx, cy = w * 0.4, h * 0.6
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    img = np.where((xx - cx) ** 2 + (yy - cy) ** 2 < (w / 40) ** 2, 255, 0).astype(np.uint8)
    r = 192 / max(w, h)
    small, (sx, sy, dx, dy) = shrink_with_map(img, (round(w * r), round(h * r)))
    g = small.astype(np.float64)
    yy, xx = np.mgrid[0:small.shape[0], 0:small.shape[1]] + 0.5
    mx, my = (xx * g).sum() / g.sum(), (yy * g).sum() / g.sum()
    assert abs(mx * sx + dx - cx) < 0.5 and abs(my * sy + dy - cy) < 0.5
