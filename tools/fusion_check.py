"""Could the shipped ``default`` combine its members better? Split-half check on validation only.

Reads each member's logits out of the shipped ONNX graph (extra graph outputs), then over random halves of the
scored FER+ validation faces fits an alternative combination on one half and scores it on the other, against
the shipped combination on the same half: mean log-probabilities, per-class additive biases on the shipped
output (coordinate search), and logistic-regression stacking of the members' log-probabilities.

    python tools/fusion_check.py [--splits 40]

The test split is not read. Needs scikit-learn (the [train] extra) and onnx.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ferkit.evaluation.metrics import softmax  # noqa: E402
from ferkit.inference import resolve_model  # noqa: E402
from ferkit.training.data import load_npz  # noqa: E402


def member_outputs(name: str = "default") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shipped output, member logits (m, n, c), labels) on FER+ validation."""
    import onnx
    import onnxruntime as ort

    onnx_path, _ = resolve_model(name)
    model = onnx.load(str(onnx_path))
    heads = [n.output[0] for n in model.graph.node if n.op_type == "Gemm" and n.name.startswith("/members.")]
    heads = heads or [n.output[0] for n in model.graph.node if n.op_type == "Gemm"]
    for h in heads:
        model.graph.output.append(onnx.helper.make_tensor_value_info(h, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    ds = load_npz("val", "ferplus")
    x = ds.images.astype(np.float32)[:, None] / 255
    runs = [sess.run(None, {sess.get_inputs()[0].name: x[i:i + 512]}) for i in range(0, len(x), 512)]
    fused = np.concatenate([r[0] for r in runs])
    members = np.stack([np.concatenate([r[k] for r in runs]) for k in range(1, len(heads) + 1)])
    return fused, members, ds.labels


def _tune_bias(s: np.ndarray, y: np.ndarray, rounds: int = 3) -> np.ndarray:
    b = np.zeros(s.shape[1])
    for _ in range(rounds):
        for c in range(s.shape[1]):
            best = (-1.0, 0.0)
            for g in np.linspace(-1.5, 1.5, 31):
                bb = b.copy()
                bb[c] = g
                acc = float(((s + bb).argmax(1) == y).mean())
                if acc > best[0] + 1e-12:
                    best = (acc, g)
            b[c] = best[1]
    return b


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--splits", type=int, default=40)
    ap.add_argument("--model", default="default")
    args = ap.parse_args()
    fused, members, y = member_outputs(args.model)
    ok = y >= 0
    fused, members, y = fused[ok], members[:, ok], y[ok]
    print(f"{len(y)} scored validation faces; shipped {(fused.argmax(1) == y).mean():.4f}; members "
          + ", ".join(f"{(m.argmax(1) == y).mean():.4f}" for m in members))
    log_p = [np.log(softmax(m)) for m in members]
    mean_lp = np.mean(log_p, 0)
    feats = np.concatenate(log_p, 1)
    rng = np.random.default_rng(0)
    gains: dict[str, list[float]] = {"mean log-prob": [], "class biases": [], "LR stacking": []}
    for _ in range(args.splits):
        p = rng.permutation(len(y))
        a, b = p[: len(y) // 2], p[len(y) // 2:]
        base = (fused[b].argmax(1) == y[b]).mean()
        gains["mean log-prob"].append((mean_lp[b].argmax(1) == y[b]).mean() - base)
        gains["class biases"].append(((fused[b] + _tune_bias(fused[a], y[a])).argmax(1) == y[b]).mean() - base)
        clf = LogisticRegression(C=0.1, max_iter=2000).fit(feats[a], y[a])
        gains["LR stacking"].append((clf.predict(feats[b]) == y[b]).mean() - base)
    for k, v in gains.items():
        print(f"{k}: {np.mean(v) * 100:+.2f} +- {np.std(v) * 100:.2f} points on the held-out half "
              f"({args.splits} splits)")


if __name__ == "__main__":
    main()
