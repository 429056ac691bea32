"""Is the face mesh (the one face-trained network we have offline) a useful expression feature extractor?

Runs the shipped MediaPipe face mesh on every FER+ training and validation face (48 px, padded by ``--pad`` of
the side with edge pixels, resized to 192 px), keeps two inner feature maps (``p_re_lu_17``: 128 x 3 x 3, the
last shared layer; ``p_re_lu_14`` averaged: 128), fits a logistic regression on the training faces and reports
validation accuracy alone and mixed into an ensemble's validation probabilities (``log p + w log q``).

Usage: ``python tools/mesh_feature_probe.py [--pad 0.15] [--ensemble RUN_DIR ...]`` (runs with val_logits.npy).
No test-split figure is computed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ferkit.evaluation.metrics import softmax  # noqa: E402
from ferkit.training.data import load_npz  # noqa: E402

MESH = ROOT / "src" / "ferkit" / "face" / "assets" / "face_mesh_468.onnx"


def features(images: np.ndarray, pad: float) -> np.ndarray:
    import onnx
    import onnxruntime as ort

    m = onnx.load(str(MESH))
    for name in ("p_re_lu_17", "p_re_lu_14"):
        m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0].name
    out = []
    p = int(round(48 * pad))
    for i in range(0, len(images), 256):
        batch = []
        for im in images[i:i + 256]:
            im = cv2.copyMakeBorder(im, p, p, p, p, cv2.BORDER_REPLICATE) if p else im
            batch.append(np.repeat(cv2.resize(im, (192, 192), interpolation=cv2.INTER_LINEAR)[:, :, None], 3, 2))
        _, _, f17, f14 = sess.run(None, {inp: np.stack(batch).astype(np.float32) / 255})
        out.append(np.hstack([f17.reshape(len(batch), -1), f14.reshape(len(batch), 128, -1).mean(2)]))
    return np.concatenate(out)


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pad", type=float, default=0.15)
    ap.add_argument("--ensemble", nargs="*", type=Path, default=[])
    args = ap.parse_args()
    tr, va = load_npz("train"), load_npz("val")
    xtr, xva = features(tr.images, args.pad), features(va.images, args.pad)
    sc = StandardScaler().fit(xtr)
    keep = tr.labels >= 0
    clf = LogisticRegression(C=0.05, max_iter=300).fit(sc.transform(xtr[keep]), tr.labels[keep])
    q = clf.predict_proba(sc.transform(xva))
    m = va.labels >= 0
    print(f"mesh features ({xtr.shape[1]}) + logistic regression: validation accuracy "
          f"{(q.argmax(1)[m] == va.labels[m]).mean():.4f}")
    if args.ensemble:
        p = sum(softmax(np.load(r / "val_logits.npy"), 1.0) for r in args.ensemble) / len(args.ensemble)
        for w in (0.0, 0.05, 0.1, 0.2, 0.3):
            z = np.log(p + 1e-6) + w * np.log(q + 1e-6)
            print(f"  ensemble + {w:.2f} x mesh: {(z.argmax(1)[m] == va.labels[m]).mean():.4f}")


if __name__ == "__main__":
    main()
