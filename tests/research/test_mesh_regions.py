"""Mesh-placed region crops (RAN ``placement="mesh"``): box geometry under augmentation, mesh boxes on real
faces, training, ONNX export with a ``boxes`` input, and the analyze pipeline feeding mesh boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ferkit.face.regions import boxes_from_mesh, mesh_region_boxes, region_array
from ferkit.models import create_model
from ferkit.training.augment import AugmentConfig, augment, crop_boxes, transform_boxes
from ferkit.training.data import load_npz

ROOT = Path(__file__).resolve().parents[2]


def test_boxes_follow_the_augmented_faces() -> None:
    """A blob at a box centre ends up where the transformed box centre says, for random affine warps."""
    x = torch.zeros(8, 1, 48, 48)
    x[:, :, 19, 14] = 1.0
    x = F.avg_pool2d(F.pad(x, (2, 2, 2, 2)), 5, 1) * 25
    boxes = torch.tensor([[[14.5 / 48, 19.5 / 48, 0.2, 0.2]]]).repeat(8, 1, 1)
    g = torch.Generator().manual_seed(3)
    xa, ba = augment(x, AugmentConfig(brightness=0, contrast=0, erase=0), None, g, boxes=boxes)
    yy, xx = np.mgrid[:48, :48]
    for i in range(8):
        w = xa[i, 0].numpy() / xa[i, 0].numpy().sum()
        centroid = [((xx + 0.5) * w).sum() / 48, ((yy + 0.5) * w).sum() / 48]
        assert np.allclose(centroid, ba[i, 0, :2].numpy(), atol=2e-3)


def test_transform_boxes_identity_flip_and_scale() -> None:
    b = torch.tensor([[[0.3, 0.4, 0.2, 0.1]]])
    eye = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]])
    assert torch.allclose(transform_boxes(b, eye), b)
    flip = torch.tensor([[[-1.0, 0, 0], [0, 1.0, 0]]])
    assert torch.allclose(transform_boxes(b, flip), torch.tensor([[[0.7, 0.4, 0.2, 0.1]]]))
    zoom = torch.tensor([[[0.5, 0, 0], [0, 0.5, 0]]])  # samples the central half: everything doubles
    assert torch.allclose(transform_boxes(b, zoom), torch.tensor([[[0.1, 0.3, 0.4, 0.2]]]), atol=1e-6)
    assert torch.allclose(crop_boxes(b, 0.5), torch.tensor([[[0.1, 0.3, 0.4, 0.2]]]), atol=1e-6)


def test_boxes_from_mesh_fall_back_to_the_template() -> None:
    names = ["top_left", "right_eye", "mouth"]
    pts = np.full((2, 468, 2), np.nan, np.float32)
    out = boxes_from_mesh(pts, 48, names)
    assert np.allclose(out, region_array(names)[None].repeat(2, 0))
    pts = np.random.default_rng(0).uniform(10, 38, (2, 468, 2)).astype(np.float32)
    out = boxes_from_mesh(pts, 48, names, presence=np.array([0.9, 0.1]))
    assert np.allclose(out[1], region_array(names)) and np.allclose(out[:, 0], region_array(names)[0])
    assert not np.allclose(out[0, 1:], region_array(names)[1:])


def test_mesh_boxes_on_real_faces_sit_near_the_template(data_dir) -> None:
    faces = load_npz("val", "ferplus", data_dir).images[:48]
    names = ["right_eye", "left_eye", "mouth"]
    b = mesh_region_boxes(faces, names, cache=False)
    assert b.shape == (48, 3, 4)
    tmpl = region_array(names)
    # The mesh moves boxes per face (not all template), but on FER crops they stay near the template places.
    assert (np.abs(b - tmpl).max(axis=(1, 2)) > 1e-3).mean() > 0.8
    assert np.median(np.abs(b[..., :2] - tmpl[:, :2])) < 0.06
    assert (b[:, 0, 0] < b[:, 1, 0]).mean() > 0.9  # right eye (image left) left of the left eye


def test_ran_mesh_trains_exports_and_runs_in_the_pipeline(data_dir, tmp_path, monkeypatch) -> None:
    pytest.importorskip("onnx")
    monkeypatch.setenv("FERKIT_CACHE", str(tmp_path / "cache"))
    from ferkit.inference import ExpressionModel
    from ferkit.training.export import export_runs, load_run_model, parity
    from ferkit.training.trainer import TrainConfig, Trainer

    model = create_model("ran", placement="mesh")
    assert model.wants_boxes and not create_model("ran").wants_boxes
    with pytest.raises(ValueError, match="placement"):
        create_model("ran", placement="nowhere")

    val = load_npz("val", "ferplus", data_dir)
    tr = val.subset(np.flatnonzero(val.labels >= 0)[:192])
    va = load_npz("test", "ferplus", data_dir).subset(np.arange(96))
    cfg = TrainConfig(model="ran", model_kwargs={"placement": "mesh", "width": 8}, epochs=1, batch_size=64,
                      device="cpu", patience=0)
    run = tmp_path / "run"
    trainer = Trainer(cfg, run, train=tr, val=va, quiet=True)
    assert trainer.b_train is not None and trainer.b_train.shape == (192, 9, 4)
    trainer.run()
    assert (tmp_path / "cache" / "mesh").is_dir()  # training meshes are cached

    m, _ = load_run_model(run)
    x = torch.from_numpy(va.images[:8, None] / 255.0).float()
    bx = torch.from_numpy(mesh_region_boxes(va.images[:8], m.backbone.region_names))
    with torch.no_grad():
        assert not torch.allclose(m(x), m(x, bx))  # the boxes matter

    # Export: ONNX with a `boxes` input, a card that says so, parity on real faces with mesh boxes.
    slice_dir = tmp_path / "npz"
    slice_dir.mkdir()
    for name in ("fer2013_train.npz", "fer2013_val_public.npz", "fer2013_test_private.npz"):
        z = np.load(data_dir / "fer2013_val_public.npz")
        np.savez(slice_dir / name, **{k: (z[k][:120] if k in ("images", "label", "ferplus_votes") else z[k])
                                      for k in ("images", "label", "ferplus_votes", "class_names",
                                                "ferplus_columns")})
    card = export_runs([(run, None)], "ranmesh", tmp_path / "w", "ferplus", str(slice_dir), evaluate_test=False)
    assert card["regions"]["names"] == m.backbone.region_names and card["onnx_torch_max_abs_diff"] < 1e-4
    assert parity(m, tmp_path / "w" / "ranmesh.onnx", va.images[:16]) < 1e-4
    em = ExpressionModel.load(tmp_path / "w" / "ranmesh.onnx")
    assert em.wants_boxes
    p_auto = em.predict(va.images[:8])  # boxes from the mesh on the crops
    p_given = em.predict(va.images[:8], boxes=bx.numpy())
    assert np.allclose(p_auto, p_given, atol=1e-5)
    assert np.allclose(em.predict(va.images[:8], flip=True).sum(1), 1, atol=1e-5)

    # The pipeline places the boxes from its own mesh of each face.
    from ferkit import analyze

    res = analyze(ROOT / "examples" / "single_face.jpg", model=tmp_path / "w" / "ranmesh.onnx", workers=1)
    assert res.ok and len(res.probabilities) == 1
    assert np.allclose(res.probabilities.sum(1), 1, atol=1e-4)
    card_json = json.loads((tmp_path / "w" / "ranmesh.json").read_text())
    assert card_json["regions"]["placement"] == "mesh"
