from __future__ import annotations

import numpy as np
import pytest

import ferkit
from ferkit.errors import ModelError


def test_load_and_list_shipped_models():
    names = {c["name"] for c in ferkit.list_models()}
    assert {"default", "fer2013"} <= names
    m = ferkit.load_model("default")
    assert m.classes[:7] == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    p = m.predict(np.full((2, 48, 48), 128, np.uint8))
    assert p.shape == (2, 8) and np.allclose(p.sum(1), 1, atol=1e-5)
    with pytest.raises(ModelError, match="shipped models are"):
        ferkit.load_model("no-such-model")


def test_lazy_submodules():
    assert ferkit.video.VideoAnalytics is not None
    assert "analyze" in dir(ferkit)


@pytest.mark.parametrize("kwargs", [{"workers": 0}, {"workers": -3}, {"workers": 1.5}, {"max_pixels": 0}])
def test_analyzer_refuses_bad_settings_when_made(kwargs):
    from ferkit.errors import InputError

    with pytest.raises(InputError, match=next(iter(kwargs))):
        ferkit.Analyzer(**kwargs)
