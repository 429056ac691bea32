"""Average the class probabilities of trained FER+ models on the training split (knowledge-distillation
targets for small students: ``ferkit train --soft-targets OUT.npy``).

    python tools/teacher_targets.py OUT.npy RUN_DIR/best.pt:RUN_DIR/config.json ...
    python tools/teacher_targets.py OUT.npy default          # a shipped (or exported) ONNX model: name or path

A teacher given as a name or ``.onnx`` path runs through onnxruntime (its calibrated probabilities,
:func:`ferkit.load_model`); that needs no checkpoint, so a fresh checkout can make targets from the shipped
``default``.

Limits: FER+ from the default data location (``../shared/data``), 8 classes, grey 48 px faces without a close
crop; one row per face of the training split as loaded (before ``drop_unscored_train``), as the trainer expects.
The script lives in the repository's ``tools/`` (it is not installed with the package).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ferkit.evaluation.metrics import softmax  # noqa: E402
from ferkit.models import create_model  # noqa: E402
from ferkit.training.data import load_npz  # noqa: E402


def _ort_logits(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """Logits through onnxruntime (about 1.7x faster than eager torch on this CPU)."""
    import io

    import onnxruntime as ort

    buf = io.BytesIO()
    torch.onnx.export(
        model,
        torch.rand(1, 1, 48, 48),
        buf,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "b"}},
        opset_version=17,
        dynamo=False,
    )
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
    out = [
        sess.run(None, {"x": images[i : i + 256, None].astype(np.float32) / 255})[0] for i in range(0, len(images), 256)
    ]
    return np.concatenate(out)


def _onnx_probs(name_or_path: str, images: np.ndarray) -> np.ndarray:
    """Calibrated probabilities of a shipped or exported ONNX model with FER+'s 8 classes."""
    from ferkit.inference import load_model
    from ferkit.labels import FERPLUS_CLASSES

    model = load_model(name_or_path, threads=2)
    if tuple(model.classes) != tuple(FERPLUS_CLASSES):
        raise SystemExit(f"{name_or_path}: classes {model.classes} are not FER+'s {FERPLUS_CLASSES}")
    return np.concatenate([model.predict(images[i : i + 512]) for i in range(0, len(images), 512)])


def main() -> None:
    out = sys.argv[1]
    torch.set_num_threads(2)
    train = load_npz("train", "ferplus")
    probs = []
    for spec in sys.argv[2:]:
        if ":" not in spec:
            probs.append(_onnx_probs(spec, train.images))
            acc = (probs[-1].argmax(1) == train.labels)[train.labels >= 0].mean()
            print(spec, "train acc", float(acc), flush=True)
            continue
        ck_path, cfg_path = spec.split(":")
        cfg = json.loads(Path(cfg_path).read_text())
        kw = dict(cfg.get("model_kwargs", {}), num_classes=8, in_chans=1, pretrained=False)
        model = create_model(cfg["model"], **kw)
        sd = torch.load(ck_path, map_location="cpu", weights_only=False)["model"]
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
        logits = _ort_logits(model.eval(), train.images)
        probs.append(softmax(logits))
        print(spec, "train acc", float((logits.argmax(1) == train.labels)[train.labels >= 0].mean()), flush=True)
    np.save(out, np.mean(probs, 0).astype(np.float32))


if __name__ == "__main__":
    main()
