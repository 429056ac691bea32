from __future__ import annotations

import numpy as np
import pytest
import torch

from ferkit.models import create_model
from ferkit.models.ran import region_biased_loss
from ferkit.models.regions import crop_regions, region_table

torch.set_num_threads(1)

TINY = {
    "ran": {"width": 4, "crop_size": 16},
    "vit_tiny": {"dim": 16, "depth": 2, "heads": 2},
    "landmark_transformer": {"dim": 16, "depth": 2, "heads": 2},
    "ae_dense_clf": {"latent": 8},
    "ae_conv_clf": {"latent": 8},
}


@pytest.mark.parametrize("name", list(TINY))
def test_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    m = create_model(name, num_classes=8, **TINY[name]).train()
    x = torch.rand(3, 1, 48, 48)
    z = m(x)
    assert z.shape == (3, 8)
    loss = torch.nn.functional.cross_entropy(z, torch.tensor([0, 1, 2]))
    extra = getattr(m.backbone, "extra_loss", None)
    if extra is not None:
        loss = loss + extra
    loss.backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
    assert m.features(x).ndim == 2


def test_ran_extra_loss_only_in_training_and_weights() -> None:
    m = create_model("ran", **TINY["ran"])
    m.train()(torch.rand(2, 1, 48, 48))
    assert m.backbone.extra_loss is not None and m.backbone.extra_loss.ndim == 0
    m.eval()(torch.rand(2, 1, 48, 48))
    assert m.backbone.extra_loss is None
    mu, nu = m.backbone.last_weights
    n = 1 + len(m.backbone.region_names)
    assert mu.shape == nu.shape == (2, n) and len(m.backbone.names) == n
    assert ((mu > 0) & (mu < 1)).all()


def test_region_biased_loss_hand_made() -> None:
    # column 0 = whole face; the best region must beat it by the margin (0.1)
    assert region_biased_loss(torch.tensor([[0.5, 0.7, 0.2]])).item() == pytest.approx(0.0)
    assert region_biased_loss(torch.tensor([[0.5, 0.55, 0.1]])).item() == pytest.approx(0.05)
    assert region_biased_loss(torch.tensor([[0.9, 0.2, 0.3]])).item() == pytest.approx(0.7)
    batch = torch.tensor([[0.5, 0.55, 0.1], [0.9, 0.2, 0.3]])
    assert region_biased_loss(batch).item() == pytest.approx(0.375)
    assert region_biased_loss(torch.tensor([[0.5, 0.55]]), margin=0.2).item() == pytest.approx(0.15)


def test_crop_regions_full_box_and_per_image_boxes() -> None:
    x = torch.rand(2, 1, 48, 48)
    full = crop_regions(x, torch.tensor([[0.5, 0.5, 1.0, 1.0]]), 48)
    assert full.shape == (2, 1, 1, 48, 48)
    assert torch.allclose(full[:, 0], x, atol=1e-5)
    per = torch.tensor([[[0.25, 0.25, 0.5, 0.5]], [[0.75, 0.75, 0.5, 0.5]]])
    q = crop_regions(x, per, 24)
    assert torch.allclose(q[0, 0], x[0, :, :24, :24], atol=1e-5)
    assert torch.allclose(q[1, 0], x[1, :, 24:, 24:], atol=1e-5)
    assert region_table(["mouth", "left_eye"]).shape == (2, 4)


def test_attention_shapes() -> None:
    vit = create_model("vit_tiny", **TINY["vit_tiny"]).eval()
    vit.backbone.tf.keep_attention(True)
    vit(torch.rand(2, 1, 48, 48))
    maps = vit.backbone.tf.attention_maps()
    assert len(maps) == 2 and maps[0].shape == (2, 2, 65, 65)
    assert torch.allclose(maps[0].sum(-1), torch.ones(2, 2, 65), atol=1e-5)
    lmt = create_model("landmark_transformer", **TINY["landmark_transformer"]).eval()
    lmt.backbone.tf.keep_attention(True)
    lmt(torch.rand(1, 1, 48, 48))
    t = len(lmt.backbone.token_names)
    assert t == 1 + 8 + 36
    assert lmt.backbone.tf.attention_maps()[-1].shape == (1, 2, t, t)
    lmt.backbone.tf.keep_attention(False)
    assert lmt.backbone.tf.attention_maps() == []
    no_cnn = create_model("landmark_transformer", cnn_tokens=False, **TINY["landmark_transformer"]).eval()
    assert no_cnn(torch.rand(1, 1, 48, 48)).shape == (1, 8) and len(no_cnn.backbone.token_names) == 9


@pytest.mark.parametrize("name", ["ran", "landmark_transformer"])
def test_onnx_parity(name: str, tmp_path) -> None:
    from ferkit.training.export import parity, to_onnx

    m = create_model(name, **TINY[name]).eval()
    to_onnx(m, tmp_path / "m.onnx")
    imgs = (np.random.default_rng(0).random((4, 48, 48)) * 255).astype(np.uint8)
    assert parity(m, tmp_path / "m.onnx", imgs) < 1e-4


def test_macs_count_attention() -> None:
    from ferkit.compare import count_macs_full
    from ferkit.training.export import count_macs

    m = create_model("vit_tiny", **TINY["vit_tiny"])
    assert count_macs_full(m) > count_macs(m, 48)
    cnn = create_model("cnn4")
    assert count_macs_full(cnn) == count_macs(cnn, 48)
