"""Face mesh: shapes, placement on the real sample faces, regions, ROIs, batching."""

from __future__ import annotations

import numpy as np
import pytest

from ferkit.errors import InputError
from ferkit.face import (
    NUM_LANDMARKS,
    REGIONS,
    Detections,
    FaceMesh,
    Landmarks,
    detect_landmarks,
    region_boxes,
    roi_matrices,
    rois_from_detections,
    rois_from_landmarks,
)

#: Photos whose face the mesh handles (the black-and-white one is a near profile: mesh presence ~0).
MESH_PHOTOS = (
    "single_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg",
    "Image_with_alpha.png",
)


def test_regions_are_valid_index_lists() -> None:
    for name in ("left_eye", "right_eye", "left_brow", "right_brow", "mouth", "lips", "nose", "face_oval"):
        idx = np.asarray(REGIONS[name])
        assert idx.size >= 8, name
        assert idx.min() >= 0 and idx.max() < NUM_LANDMARKS and len(set(idx.tolist())) == idx.size
    assert len(REGIONS["face_oval"]) == 36
    assert not set(REGIONS["left_eye"]) & set(REGIONS["right_eye"])


def test_roi_matrix_maps_crop_centre_to_roi_centre() -> None:
    rois = np.array([[100.0, 50.0, 192.0, 0.0], [10.0, 20.0, 96.0, np.pi / 2]])
    m = roi_matrices(rois)
    centre = m[:, :, :2] @ np.array([96.0, 96.0]) + m[:, :, 2]
    np.testing.assert_allclose(centre, rois[:, :2], atol=1e-9)
    np.testing.assert_allclose(m[0, :, :2], np.eye(2), atol=1e-12)  # side 192, no rotation: identity scale
    # a quarter turn: the crop's x axis points down in the image, at half scale
    np.testing.assert_allclose(m[1, :, :2], [[0, -0.5], [0.5, 0]], atol=1e-12)


def test_roi_rotation_follows_the_eyes() -> None:
    kps = np.zeros((1, 6, 2), np.float32)
    kps[0, 0], kps[0, 1] = (100, 100), (200, 200)  # subject's right eye up-left, left eye down-right
    d = Detections([[100, 100, 100, 100]], [0.9], kps, ("right_eye", "left_eye", "a", "b", "c", "d"))
    roi = rois_from_detections(d)[0]
    assert roi[:3].tolist() == pytest.approx([150, 150, 150])
    assert roi[3] == pytest.approx(np.pi / 4)


def test_empty_inputs(mesh: FaceMesh, load_image) -> None:
    img = load_image("single_face.jpg")
    lm = mesh.run(img, Detections.empty())
    assert len(lm) == 0 and lm.points.shape == (0, NUM_LANDMARKS, 3)
    assert [len(x) for x in mesh.run_batch([img, img], [Detections.empty(), np.zeros((0, 4))])] == [0, 0]
    with pytest.raises(InputError):
        mesh.run_batch([img], [])
    with pytest.raises(InputError):
        region_boxes(np.zeros((1, 10, 2)), ["mouth"])
    with pytest.raises(InputError, match="unknown face region"):
        region_boxes(np.zeros((1, NUM_LANDMARKS, 2)), ["iris"])


@pytest.mark.parametrize("name", MESH_PHOTOS)
def test_mesh_sits_on_the_face(detector, mesh: FaceMesh, load_image, name: str) -> None:
    img = load_image(name)
    d = detector.detect(img)
    lm = mesh.run(img, d)
    assert isinstance(lm, Landmarks) and lm.points.shape == (1, NUM_LANDMARKS, 3) and lm.points.dtype == np.float32
    assert lm.presence[0] > 0.9
    x, y, w, h = d.boxes[0]
    xy = lm.points[0, :, :2]
    inside = (xy > [x - 0.15 * w, y - 0.15 * h]) & (xy < [x + 1.15 * w, y + 1.15 * h])
    assert inside.all(axis=1).mean() > 0.97
    # the mesh's box and the detector's box agree
    mb = lm.boxes()[0]
    assert abs((mb[0] + mb[2] / 2) - (x + w / 2)) < 0.2 * w
    # eyes above mouth, subject's left eye on the image right, brows above eyes
    eye_r, eye_l = lm.region("right_eye")[0].mean(0), lm.region("left_eye")[0].mean(0)
    mouth = lm.region("mouth")[0].mean(0)
    assert max(eye_r[1], eye_l[1]) < mouth[1]
    assert eye_r[0] < eye_l[0]
    assert lm.region("right_brow")[0, :, 1].mean() < eye_r[1]
    # mesh eyes agree with BlazeFace's eye key points (within a tenth of the box)
    assert np.linalg.norm(eye_r[:2] - d.keypoint("right_eye")[0]) < 0.1 * w
    assert np.linalg.norm(eye_l[:2] - d.keypoint("left_eye")[0]) < 0.1 * w


def test_five_meshes_in_group_photo(detector, mesh: FaceMesh, load_image) -> None:
    img = load_image("multi_face.jpg")
    d = detector.detect(img)
    lm = mesh.run(img, d)
    assert len(lm) == 5 and (lm.presence > 0.9).all()
    centres = lm.points[..., :2].mean(1)
    boxes = d.boxes
    assert ((centres > boxes[:, :2]) & (centres < boxes[:, :2] + boxes[:, 2:])).all()


def test_region_boxes(detector, mesh: FaceMesh, load_image) -> None:
    img = load_image("0-f15-hao-ph.jpg")
    lm = mesh.run(img, detector.detect(img))
    names = ["left_eye", "right_eye", "mouth", "face_oval"]
    b = region_boxes(lm, names, scale=1.2)
    assert b.shape == (1, 4, 4) and b.dtype == np.float32
    mouth = lm.region("mouth")[0, :, :2]
    x, y, w, h = b[0, 2]
    assert ((mouth >= [x, y]) & (mouth <= [x + w, y + h])).all()
    tight = region_boxes(lm.points, ["mouth"], scale=1.0)[0, 0]
    assert w == pytest.approx(tight[2] * 1.2, rel=1e-5)
    sq = region_boxes(lm, names, square=True)
    np.testing.assert_allclose(sq[0, :, 2], sq[0, :, 3])
    assert (b[0, 3, 2:] > b[0, 2, 2:]).all()  # face oval bigger than the mouth


def test_tracking_roi_and_batch(detector, mesh: FaceMesh, read_frames) -> None:
    frames = list(read_frames("WolfgangLanger_Pexels.mp4", [0, 1, 2, 3]).values())
    dets = detector.detect_batch(frames)
    batch = mesh.run_batch(frames, dets)
    single = [mesh.run(f, d) for f, d in zip(frames, dets)]
    for b, s in zip(batch, single):
        np.testing.assert_allclose(b.points, s.points, atol=1e-2)
    # ROI from this frame's mesh is close to the detection ROI; tracking with it gives the same mesh
    r_det, r_mesh = batch[0].rois[0], rois_from_landmarks(batch[0])[0]
    assert np.linalg.norm(r_det[:2] - r_mesh[:2]) < 0.15 * r_det[2]
    assert abs(r_mesh[2] / r_det[2] - 1) < 0.3
    tracked = mesh.run(frames[1], rois_from_landmarks(batch[0]))
    err = np.linalg.norm(tracked.points[0, :, :2] - batch[1].points[0, :, :2], axis=1)
    assert tracked.presence[0] > 0.9 and np.median(err) < 0.03 * r_det[2]
    assert len(detect_landmarks(frames[0], dets[0])) == 1
