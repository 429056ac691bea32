from __future__ import annotations

import numpy as np
import pytest
import torch

from ferkit.embed.cluster import cluster_accuracy, majority_labelling
from ferkit.explain import gradcam, paint_boxes, rollout
from ferkit.models import create_model
from ferkit.robustness import build_subsets, occlude, pose_proxy, pose_subsets

torch.set_num_threads(1)


def test_rollout_hand_made() -> None:
    t = 3
    uniform = torch.full((1, 1, t, t), 1 / t)
    rel = rollout([uniform])
    assert rel.shape == (1, t - 1)
    assert torch.allclose(rel, torch.tensor([[1 / 6, 1 / 6]]))
    eye = torch.eye(t).reshape(1, 1, t, t)
    assert torch.allclose(rollout([eye, eye]), torch.zeros(1, t - 1))
    # two layers = product of the residual-augmented matrices
    a = torch.softmax(torch.randn(1, 2, t, t), -1)
    b = torch.softmax(torch.randn(1, 2, t, t), -1)
    aa, bb = 0.5 * a.mean(1) + 0.5 * torch.eye(t), 0.5 * b.mean(1) + 0.5 * torch.eye(t)
    assert torch.allclose(rollout([a, b]), (bb @ aa)[:, 0, 1:], atol=1e-6)


def test_rollout_on_tiny_model() -> None:
    from ferkit.explain import explain

    m = create_model("vit_tiny", dim=16, depth=2, heads=2, patch=12).eval()
    face = (np.random.default_rng(0).random((48, 48)) * 255).astype(np.uint8)
    heat, probs, info = explain(m, face)
    assert heat.shape == (48, 48) and 0 <= heat.min() and heat.max() <= 1
    assert probs.shape == (8,) and probs.sum() == pytest.approx(1, abs=1e-5)
    assert info["method"] == "attention rollout"
    assert m.backbone.tf.attention_maps() == []  # attention capture switched off again
    lmt = create_model("landmark_transformer", dim=16, depth=1, heads=2)
    _, _, info = explain(lmt, face)
    assert set(info["tokens"]) == set(lmt.backbone.region_names)
    ran = create_model("ran", width=4, crop_size=16)
    heat, _, info = explain(ran, face)
    assert sum(info["weights"].values()) == pytest.approx(1, abs=1e-5) and heat.shape == (48, 48)
    import ferkit
    from ferkit.errors import InputError

    with pytest.raises(InputError, match="occlusion_map"):  # an exported model: pointed to what explains it
        explain(ferkit.load_model("default"), face)
    with pytest.raises(InputError, match="grey uint8"):  # floats would be read as near-black
        explain(m, face.astype(np.float32) / 255)


def test_gradcam_and_paint() -> None:
    m = create_model("cnn4")
    heat, logits, info = gradcam(m, torch.rand(1, 1, 48, 48))
    assert heat.shape == (48, 48) and info["method"] == "Grad-CAM" and logits.shape == (1, 8)
    h = paint_boxes([1.0], [(0.25, 0.25, 0.5, 0.5)], 48)
    assert h[:24, :24].min() == 1 and h[24:, :].max() == 0 and h[:, 24:].max() == 0


def test_cluster_accuracy_toy_embedding() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 20, (8, 5))
    cl = np.repeat(np.arange(8), 30)
    labels = (cl * 3) % 8
    z = centres[cl] + rng.normal(0, 0.1, (len(cl), 5))
    res = cluster_accuracy(z, labels)
    assert res["accuracy"] == pytest.approx(1.0)
    assert res["n_distinct_names"] == 8
    # a held-out evaluation set, with unscored rows
    y2 = labels.copy()
    y2[:5] = -1
    assert cluster_accuracy(z, labels, z + 0.01, y2)["accuracy"] == pytest.approx(1.0)


def test_majority_labelling() -> None:
    clusters = np.array([0, 0, 0, 1, 1, 2])
    labels = np.array([3, 3, 1, 2, -1, -1])
    assert majority_labelling(clusters, labels, 4).tolist() == [3, 2, -1, -1]


def test_occlusion_determinism() -> None:
    imgs = (np.random.default_rng(1).random((20, 48, 48)) * 255).astype(np.uint8)
    for kind in ("eyes", "mouth", "random"):
        a, b = occlude(imgs, kind, seed=0), occlude(imgs, kind, seed=0)
        assert np.array_equal(a, b)
        assert not np.array_equal(a, occlude(imgs, kind, seed=1))
        assert not np.array_equal(a, imgs)
    eyes = occlude(imgs, "eyes")
    assert np.array_equal(eyes[:, 44:], imgs[:, 44:])  # chin untouched
    mouth = occlude(imgs, "mouth")
    assert np.array_equal(mouth[:, :8], imgs[:, :8])  # forehead untouched
    s1, s2 = build_subsets(imgs, seed=3), build_subsets(imgs, seed=3)
    assert list(s1) == ["occ_eyes", "occ_mouth", "occ_random"]
    assert all(np.array_equal(s1[k][1], s2[k][1]) for k in s1)
    with pytest.raises(ValueError):
        occlude(imgs, "hat")


def _mesh(dx: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    from ferkit.face.landmarks import KEYPOINT_INDEX, REGIONS

    p = np.zeros((468, 2))
    p[list(REGIONS["right_eye"])] = (14, 18)
    p[list(REGIONS["left_eye"])] = (34, 18)
    p[KEYPOINT_INDEX["nose_tip"]] = (24 + dx, 28)
    a = np.radians(roll_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (p - 24) @ rot.T + 24


def test_pose_proxy_and_subsets() -> None:
    pts = np.stack([_mesh(), _mesh(dx=5), _mesh(roll_deg=15), _mesh(dx=-4, roll_deg=-3)])
    yaw, roll = pose_proxy(pts)
    assert yaw == pytest.approx([0, 0.25, 0, -0.2], abs=1e-6)
    assert roll == pytest.approx([0, 0, 15, -3], abs=1e-6)
    sub = pose_subsets(pts)
    assert sub["pose_frontal"].tolist() == [0] and sub["pose_yaw"].tolist() == [1, 3]
    assert sub["pose_roll"].tolist() == [2]
    assert pose_subsets(pts, presence=np.array([1, 0, 1, 1]))["pose_yaw"].tolist() == [3]
    a, b = pose_subsets(pts), pose_subsets(pts.copy())
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_autoencoders_take_uint8_faces_only() -> None:
    from ferkit.embed import encode, make_autoencoder, train_autoencoder
    from ferkit.errors import InputError

    faces = (np.random.default_rng(0).random((8, 48, 48)) * 255).astype(np.uint8)
    ae = train_autoencoder(make_autoencoder("dense", latent=8), faces, epochs=1, batch=4)
    assert encode(ae.encoder, faces).shape == (8, 8)
    for bad in (faces.astype(np.float32) / 255, np.repeat(faces[..., None], 3, axis=3)):
        with pytest.raises(InputError, match="uint8 grey"):
            train_autoencoder(make_autoencoder("dense"), bad)
        with pytest.raises(InputError, match="uint8 grey"):
            encode(ae.encoder, bad)
