from __future__ import annotations

import cv2
import numpy as np

from ferkit.pipeline import crop_sharpness
from ferkit.video.aggregate import face_quality


def test_blurred_faces_are_flagged():
    rng = np.random.default_rng(0)
    sharp = cv2.resize(rng.integers(0, 256, (24, 24), dtype=np.uint8), (48, 48), interpolation=cv2.INTER_LINEAR)
    crops = np.stack([sharp, cv2.GaussianBlur(sharp, (0, 0), 1.0), cv2.GaussianBlur(sharp, (0, 0), 3.0)])
    s = crop_sharpness(crops)
    assert s[0] > s[1] > s[2]
    boxes = np.tile([[0, 0, 100, 100]], (3, 1))
    q = face_quality(boxes, np.ones(3), sharpness=s)
    assert q[0] == 1.0 and q[2] == 0.0
    # Colour crops give the same measure as their grey version; NaN (unknown) counts as sharp.
    colour = np.repeat(crops[..., None], 3, axis=3)
    assert np.allclose(crop_sharpness(colour), s, rtol=1e-3)
    assert face_quality(boxes[:1], None, sharpness=np.array([np.nan]))[0] == 1.0


def test_sharpness_column_in_results(samples):
    import ferkit

    df = ferkit.analyze(str(samples / "single_face.jpg")).to_pandas()
    assert "sharpness" in df.columns and (df["sharpness"] > 60).all()
