from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ferkit.evaluation.metrics import (
    classification_report,
    expected_calibration_error,
    fit_temperature,
    softmax,
)
from ferkit.training.schemes import class_weights, normalise_votes, scheme_loss

VOTES = torch.tensor([[6.0, 4.0, 0.0], [0.0, 1.0, 9.0]])
LOGITS = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])


def _logp(z):
    return torch.log_softmax(z, 1)


def test_cel_is_cross_entropy_on_vote_distribution():
    lp = _logp(LOGITS)
    want = -((0.6 * lp[0, 0] + 0.4 * lp[0, 1]) + (0.1 * lp[1, 1] + 0.9 * lp[1, 2])) / 2
    assert scheme_loss(LOGITS, VOTES, "cel").item() == pytest.approx(want.item(), rel=1e-6)


def test_mv_uses_majority():
    lp = _logp(LOGITS)
    want = -(lp[0, 0] + lp[1, 2]) / 2
    assert scheme_loss(LOGITS, VOTES, "mv").item() == pytest.approx(want.item(), rel=1e-6)


def test_mv_leaves_out_images_without_a_majority():
    """Barsoum et al.: majority = more than half the votes; a 4/3/3 image is not trained on."""
    lp = _logp(LOGITS)
    votes = torch.tensor([[4.0, 3.0, 3.0], [0.0, 1.0, 9.0]])
    assert scheme_loss(LOGITS, votes, "mv").item() == pytest.approx(-lp[1, 2].item(), rel=1e-6)
    z = LOGITS[:1].clone().requires_grad_(True)
    loss = scheme_loss(z, votes[:1], "mv")
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(z.grad).all()


def test_ml_without_acceptable_label_and_no_smoothing():
    lp = _logp(LOGITS)
    votes = torch.tensor([[2.0, 2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 10.0, 0.0, 0.0]])
    z = torch.cat([LOGITS, torch.zeros(2, 2)], 1)
    lp = _logp(z)
    # row 0: no class reaches 30 % of the votes -> left out
    assert scheme_loss(z, votes, "ml").item() == pytest.approx(-lp[1, 2].item(), rel=1e-6)
    with pytest.raises(ValueError, match="label smoothing"):
        scheme_loss(LOGITS, VOTES, "ml", label_smoothing=0.1)


def test_ml_takes_best_acceptable_label():
    lp = _logp(LOGITS)
    # row 0: classes 0 (0.6) and 1 (0.4) pass the 0.3 threshold -> max log-prob is class 0.
    # row 1: only class 2 passes.
    want = -(torch.maximum(lp[0, 0], lp[0, 1]) + lp[1, 2]) / 2
    assert scheme_loss(LOGITS, VOTES, "ml", ml_threshold=0.3).item() == pytest.approx(want.item(), rel=1e-6)
    # With a 0.5 threshold only the majority class counts for row 0.
    want = -(lp[0, 0] + lp[1, 2]) / 2
    assert scheme_loss(LOGITS, VOTES, "ml", ml_threshold=0.5).item() == pytest.approx(want.item(), rel=1e-6)


def test_pld_draws_from_votes():
    g = torch.Generator().manual_seed(0)
    lp = _logp(LOGITS)
    draws = [scheme_loss(LOGITS[:1], VOTES[:1], "pld", generator=g).item() for _ in range(400)]
    vals = np.round(draws, 5)
    a, b = round(-lp[0, 0].item(), 5), round(-lp[0, 1].item(), 5)
    assert set(vals) <= {a, b}
    frac = np.mean(vals == a)
    assert 0.5 < frac < 0.7  # 60 % of the votes


def test_drop_single_vote_outliers():
    d = normalise_votes(VOTES, drop_single=True)
    assert d[1].tolist() == [0.0, 0.0, 1.0]
    assert d[0].tolist() == pytest.approx([0.6, 0.4, 0.0])
    with pytest.raises(ValueError, match="raw vote counts"):
        normalise_votes(VOTES / VOTES.sum(1, keepdim=True), drop_single=True)


def test_class_weights_and_weighted_loss():
    w = class_weights(np.array([100, 10]))
    assert w[1] > w[0]
    assert (w * np.array([100, 10])).sum() == pytest.approx(110)
    onehot = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z = torch.zeros(2, 2)
    lw = scheme_loss(z, onehot, "mv", weights=torch.tensor([1.0, 3.0]))
    assert lw.item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError):
        scheme_loss(z, onehot, "nope")


def test_report_against_hand_computed():
    labels = np.array([0, 0, 1, 2, -1])
    probs = np.array([
        [0.7, 0.2, 0.1],   # correct
        [0.2, 0.5, 0.3],   # wrong, top-2 no (0.2 is last) -> order 1,2,0
        [0.1, 0.6, 0.3],   # correct
        [0.5, 0.1, 0.4],   # wrong, top-2 yes
        [0.3, 0.3, 0.4],   # excluded
    ])
    r = classification_report(labels, probs, ("a", "b", "c"))
    assert r["n"] == 4 and r["n_excluded"] == 1
    assert r["accuracy"] == pytest.approx(0.5)
    assert r["per_class"]["a"]["top1"] == pytest.approx(0.5)
    assert r["per_class"]["a"]["top2"] == pytest.approx(0.5)
    assert r["per_class"]["c"]["top1"] == 0 and r["per_class"]["c"]["top2"] == 1
    assert r["mean_class_top1"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert r["var_class_top1"] == pytest.approx(np.var([0.5, 1, 0]))
    assert r["confusion"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    # F1: a: p=1/2, r=1/2 -> .5 ; b: p=1/2, r=1 -> 2/3 ; c: 0
    assert r["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)


def test_ece_and_temperature():
    labels = np.array([0, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2]])
    # bin of 0.9: accuracy 1, conf .9 -> .05 ; bin of 0.8: accuracy 0, conf .8 -> .4
    assert expected_calibration_error(labels, probs) == pytest.approx(0.5 * 0.1 + 0.5 * 0.8)
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(6000, 4)) * 1.5
    p = softmax(true_logits)
    y = (p.cumsum(1) > rng.random((6000, 1))).argmax(1)  # labels drawn from calibrated probabilities
    over = true_logits * 3  # over-confident model
    t = fit_temperature(over, y)
    assert 2.5 < t < 3.5
    assert expected_calibration_error(y, softmax(over, t)) < expected_calibration_error(y, softmax(over))
    # Degenerate outputs (every answer right by a hair): the fit runs to the edge of its range and says so.
    tiny = np.eye(4)[y] * 1e-3
    with pytest.warns(RuntimeWarning, match="edge of its range"):
        assert fit_temperature(tiny, y) < 0.06


@pytest.mark.parametrize("crop", [0.9, 0.8, 0.7])
def test_crop_boxes_follow_close_crop_pixels(crop):
    """Region boxes after close_crop sit on the content, to a tenth of a pixel (whole-pixel crop offsets)."""
    from ferkit.training.augment import close_crop, crop_boxes

    s = 48
    x = torch.zeros(1, 1, s, s)
    x[..., 10:18, 12:24] = 1.0  # centre (18, 14) px
    box = torch.tensor([[[18 / s, 14 / s, 12 / s, 8 / s]]])
    m = close_crop(x, crop)[0, 0]
    yy, xx = torch.meshgrid(torch.arange(s) + 0.5, torch.arange(s) + 0.5, indexing="ij")
    centre = torch.stack([(m * xx).sum() / m.sum(), (m * yy).sum() / m.sum()])
    assert (centre - crop_boxes(box, crop, s)[0, 0, :2] * s).abs().max() < 0.1
