"""ModelEMA: the fused update follows the live model through optimizer steps and in-place reloads."""

import pytest

torch = pytest.importorskip("torch")

from ferkit.models import create_model  # noqa: E402
from ferkit.training.trainer import ModelEMA  # noqa: E402


def _step(model, opt):
    loss = model(torch.rand(4, 1, 48, 48)).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_ema_matches_the_reference_average():
    torch.manual_seed(0)
    model = create_model("resnet_fast", num_classes=8, in_chans=1).train()
    ema = ModelEMA(model, decay=0.9)
    ref = {k: v.clone().double() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(3):
        _step(model, opt)
        ema.update(model)
        for k, v in model.state_dict().items():
            ref[k] = 0.9 * ref[k] + 0.1 * v.double() if v.dtype.is_floating_point else v.double()
    got = ema.module.state_dict()
    moved = [k for k, v in model.state_dict().items() if v.dtype.is_floating_point and
             not torch.equal(v, got[k])]
    assert moved, "the EMA must lag behind the live weights"
    for k, v in got.items():
        assert torch.allclose(v.double(), ref[k], atol=1e-5), k
    counters = [v for k, v in got.items() if k.endswith("num_batches_tracked")]
    assert counters and all(int(v) == 3 for v in counters)


def test_ema_follows_in_place_reloads():
    torch.manual_seed(1)
    model = create_model("resnet_fast", num_classes=8, in_chans=1)
    ema = ModelEMA(model, decay=0.0)  # decay 0: the EMA is a copy of the live model
    other = create_model("resnet_fast", num_classes=8, in_chans=1)
    model.load_state_dict(other.state_dict())
    ema.update(model)
    for k, v in ema.module.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k
