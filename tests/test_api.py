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


def test_predict_takes_one_face_a_batch_or_a_list_and_refuses_misread_pixels(data_dir):
    import cv2

    from ferkit.errors import InputError
    from ferkit.training.data import load_npz

    m = ferkit.load_model("default")
    faces = load_npz("test", "ferplus", data_dir).images[:2]
    face = faces[0]
    want = m.predict(face[None])
    assert want.shape == (1, 8)
    for one in (face, cv2.cvtColor(face, cv2.COLOR_GRAY2BGR), cv2.cvtColor(face, cv2.COLOR_GRAY2BGRA),
                face[..., None], face.astype(np.float32) / 255):  # one face, not one per pixel row
        np.testing.assert_allclose(m.predict(one), want, atol=1e-6)
    assert m.predict(cv2.resize(face, (100, 100))).shape == (1, 8)
    np.testing.assert_allclose(m.predict(faces), m.predict(list(faces)), atol=1e-6)
    assert m.predict(faces[..., None]).shape == (2, 8)
    bad = [(face.astype(np.float32), "must lie in \\[0, 1\\]"), (faces[:, None], "channels first"),
           ("face.png", "got the path"), (["face.png"], "got the path"), (face.astype(bool), "got bool"),
           (face.astype(np.int32) * 2, "0..255")]
    for x, match in bad:
        with pytest.raises(InputError, match=match):
            m.predict(x)


def test_analyzer_takes_a_loaded_model_and_names_a_stack_of_images(data_dir):
    from ferkit.errors import InputError
    from ferkit.training.data import load_npz

    m = ferkit.load_model("default")
    az = ferkit.Analyzer(model=m, workers=1)
    assert az.model_card["name"] == m.card["name"]
    with pytest.raises(InputError, match="model must be a shipped model name"):
        ferkit.Analyzer(model=3)
    with pytest.raises(InputError, match="a stack of 4 images"):
        az.analyze(load_npz("test", "ferplus", data_dir).images[:4])


def test_research_api_is_reachable_from_the_package():
    import ferkit.training as tr

    assert {"TrainConfig", "train", "load_dataset", "export_runs", "FaceSet"} <= set(dir(tr))
    assert ferkit.training.TrainConfig is tr.TrainConfig and callable(ferkit.evaluation.evaluate_model)
    assert "cnn4" in ferkit.models.list_models() and callable(ferkit.embed.encode)
    with pytest.raises(AttributeError):
        tr.no_such_name  # noqa: B018
