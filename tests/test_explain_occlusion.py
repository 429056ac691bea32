"""Occlusion sensitivity: the heat lands where the model looks (numpy only, no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from ferkit.explain import occlusion_map


def _mouth_model(faces: np.ndarray) -> np.ndarray:
    """Class 1 ("happy") is the brightness of rows 30-40, columns 14-34; class 0 the rest."""
    p1 = faces[:, 30:40, 14:34].astype(float).mean((1, 2)) / 255
    return np.stack([1 - p1, p1], 1)


def test_heat_is_where_the_model_looks():
    face = np.full((48, 48), 40, np.uint8)
    face[30:40, 14:34] = 250
    heat, probs, info = occlusion_map(_mouth_model, face, patch=6, stride=2)
    assert heat.shape == (48, 48) and heat.max() == pytest.approx(1.0) and info["class"] == 1
    assert probs[1] > 0.9 and info["max_drop"] > 0
    inside, outside = heat[30:40, 14:34].mean(), heat[:20].mean()
    assert inside > 0.5 and outside == 0.0
    # Any target class; covering what raises class 0 lowers nothing of class 0 -> no heat
    assert occlusion_map(_mouth_model, face, target=0)[0].max() == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="grey uint8"):
        occlusion_map(_mouth_model, np.zeros((48, 48, 3), np.uint8))
    with pytest.raises(ValueError, match="patch"):
        occlusion_map(_mouth_model, np.zeros((48, 48), np.uint8), patch=60)
