"""Face alignment and drawing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ferkit.errors import InputError
from ferkit.face import (
    FER_TEMPLATE,
    REGIONS,
    Detections,
    align_faces,
    anchor_points,
    draw_detections,
    similarity_matrices,
)


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def _template_px(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    return np.stack([FER_TEMPLATE[:, 0] * w, (FER_TEMPLATE[:, 1] - 0.5) * w + h / 2], axis=1)


def test_similarity_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (4, 3, 2))
    angle, scale, t = 0.3, 1.7, np.array([5.0, -3.0])
    r = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src[0] @ r.T + t
    m = similarity_matrices(src[:1], dst)
    np.testing.assert_allclose(m[0, :, :2], r, atol=1e-9)
    np.testing.assert_allclose(m[0, :, 2], t, atol=1e-9)
    assert similarity_matrices(src, dst).shape == (4, 2, 3)


@pytest.fixture(scope="module")
def group(detector, mesh, load_image):
    img = load_image("multi_face.jpg")
    d = detector.detect(img)
    return img, d, mesh.run(img, d)


@pytest.mark.parametrize("size", [(48, 48), (112, 112), (64, 80)])
def test_mesh_alignment_puts_eyes_on_the_template(group, size: tuple[int, int]) -> None:
    img, d, lm = group
    crops, mats = align_faces(img, d, size, landmarks=lm)
    w, h = size
    assert crops.shape == (5, h, w, 3) and crops.dtype == np.uint8 and mats.shape == (5, 2, 3)
    tpl = _template_px(size)
    for i in range(5):
        eyes = np.stack([lm.points[i, list(REGIONS["right_eye"]), :2].mean(0),
                         lm.points[i, list(REGIONS["left_eye"]), :2].mean(0)])
        mapped = _apply(mats[i], eyes)
        assert np.abs(mapped - tpl[:2]).max() < 0.04 * w
        if w == h:  # FER2013-like: eyes at about 0.39 of the height
            assert 0.35 < mapped[:, 1].mean() / h < 0.42


def test_keypoint_and_box_fallbacks(group) -> None:
    img, d, lm = group
    size = (96, 96)
    crops_k, mats_k = align_faces(img, d, size)  # no mesh -> BlazeFace key points
    tpl = _template_px(size)
    mapped = np.stack([_apply(m, d.keypoints[i, :2]) for i, m in enumerate(mats_k)])
    assert np.abs(mapped - tpl[None, :2]).max() < 0.06 * size[0]
    boxes_only = Detections(d.boxes, d.scores)
    crops_b, mats_b = align_faces(img, boxes_only, size)
    assert crops_b.shape == crops_k.shape
    np.testing.assert_allclose(mats_b[:, 0, 1], 0)  # square crop, no rotation
    # the box crop and the key point crop frame the face alike: eyes within ~12% of the width
    mapped_b = np.stack([_apply(m, d.keypoints[i, :2]) for i, m in enumerate(mats_b)])
    assert np.abs(mapped_b - tpl[None, :2]).max() < 0.12 * size[0]
    # low mesh presence falls back per face
    low = lm[np.arange(5)]
    low.presence[:] = [1, 0, 1, 0, 1]
    _, method, _ = anchor_points(d, low)
    assert method.tolist() == [0, 1, 0, 1, 0]


def test_point_array_inputs_and_errors(group) -> None:
    img, d, lm = group
    a, m = align_faces(img, lm.points, (32, 32))
    _, m2 = align_faces(img, lm, (32, 32))
    np.testing.assert_allclose(m, m2)
    assert a.shape == (5, 32, 32, 3)
    c, _ = align_faces(img, d.keypoints, (32, 32))  # (n, 6, 2) raw key points
    assert c.shape == (5, 32, 32, 3)
    empty, em = align_faces(img, Detections.empty(), (32, 32))
    assert empty.shape == (0, 32, 32, 3) and em.shape == (0, 2, 3)
    with pytest.raises(InputError):
        align_faces(img, np.zeros((2, 4, 2)), (32, 32))
    with pytest.raises(InputError):
        align_faces(img, d, (0, 32))


def test_alignment_of_a_large_photo_is_smooth(detector, load_image) -> None:
    img = load_image("Image_with_alpha.png")  # 1524 px wide: the crop is shrunk with an area filter first
    d = detector.detect(img)
    crop, m = align_faces(img, d, (48, 48))
    assert crop.shape == (1, 48, 48, 3)
    # the crop matches a reference made with a plain INTER_AREA resize of the upright warp at full resolution
    inv = cv2.invertAffineTransform(m[0])
    big = 8
    m_big = cv2.invertAffineTransform(inv @ np.diag([1 / big, 1 / big, 1]))
    m_big[:, 2] += m_big[:, :2].sum(axis=1) * 0.5 - 0.5
    ref = cv2.warpAffine(img, m_big, (48 * big, 48 * big), flags=cv2.INTER_LINEAR)
    ref = cv2.resize(ref, (48, 48), interpolation=cv2.INTER_AREA)
    assert np.abs(crop[0].astype(float) - ref).mean() < 6


def test_draw_detections(group) -> None:
    img, d, lm = group
    before = img.copy()
    out = draw_detections(img, d, lm, labels=["a", "b", "c", "d", "e"])
    assert out.shape == img.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(img, before)  # input untouched
    assert (out != img).any(axis=2).mean() > 0.01
    x, y, w, h = d.boxes[0].astype(int)
    assert (out[y:y + h, x:x + w] != img[y:y + h, x:x + w]).any()
    plain = draw_detections(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), Detections.empty())
    assert plain.shape == img.shape


def test_profile_face_falls_back_to_keypoints(detector, mesh, load_image) -> None:
    img = load_image("BWPictureHuman.jpg")  # a near profile: the mesh reports no face there
    d = detector.detect(img)
    lm = mesh.run(img, d)
    assert lm.presence[0] < 0.5
    _, method, _ = anchor_points(d, lm)
    assert method.tolist() == [1]
    crops, _ = align_faces(img, d, (48, 48), landmarks=lm)
    assert crops.shape == (1, 48, 48, 3) and crops.std() > 5


def test_drawn_box_stays_on_its_pixels() -> None:
    from ferkit.face import Detections
    from ferkit.face.draw import draw_detections

    img = np.zeros((60, 60, 3), np.uint8)
    det = Detections(np.array([[10, 10, 20, 20]], np.float32), np.array([0.9], np.float32))
    cols = np.flatnonzero(draw_detections(img, det, draw_scores=False).any(axis=(0, 2)))
    assert cols.max() <= 29 + 1  # (anti-aliased 1 px line on pixel 29: at most its edge bleeds)
