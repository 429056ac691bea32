"""Static int8 quantization of exported models (onnxruntime QDQ, per-channel weights).

On x86 CPUs with VNNI, onnxruntime runs the quantized convolutions several times faster than float32
(``bench/bench_models.py`` measures it side by side). Activation ranges are calibrated on training faces
(never on the validation or test split); the card records the method, the number of calibration faces and
the agreement with the float model. Needs the ``[train]`` extra (``onnx``); the result runs on plain
onnxruntime.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

#: Calibration methods of ``onnxruntime.quantization`` that we expose.
CALIBRATION = ("minmax", "percentile", "entropy")


#: Operators that carry a network's weights: the float tail of a graph stops at the last of them.
_HEAVY_OPS = frozenset({"Conv", "ConvTranspose", "MatMul"})


def float_tail(onnx_path: str | Path) -> list[str]:
    """Names of the nodes between the graph's outputs and its linear classifier heads (``Gemm``, included) or
    last convolutions / matrix products: softmax, the ensemble's weighted average, log and temperature.

    They cost next to nothing, and in uint8 they would round every probability to a multiple of about 1/255
    (so anything under 0.002 became exactly 0), so they stay in float32.
    """
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    producer = {out: node for node in graph.node for out in node.output}
    tail: list[str] = []
    seen: set[int] = set()
    stack = [o.name for o in graph.output]
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in seen or node.op_type in _HEAVY_OPS:
            continue
        seen.add(id(node))
        tail.append(node.name)
        if node.op_type != "Gemm":  # a classifier head: in the tail, but what feeds it (features) is not
            stack.extend(i for i in node.input if i)
    return tail


def quantize_int8(fp32_onnx: bytes | str | Path, out_path: str | Path, calib_faces: np.ndarray,
                  method: str = "percentile", batch: int = 64) -> dict[str, Any]:
    """Quantize a float ONNX classifier (input ``input`` ``(N, C, S, S)`` in [0, 1]) to ``out_path``.

    ``calib_faces``: uint8 faces ``(n, S, S)`` (grey) or ``(n, C, S, S)`` for the activation ranges, fed
    ``batch`` at a time (lower it for graphs with large inner batches, e.g. test-time augmentation).
    Returns the quantization record for the model card.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in CALIBRATION:
        raise ValueError(f"calibration method must be one of {CALIBRATION}, got {method!r}")
    x = calib_faces.astype(np.float32) / 255
    if x.ndim == 3:
        x = x[:, None]
    if len(x) == 0:
        raise ValueError("no calibration faces")

    n_batches = (len(x) + batch - 1) // batch

    class _Reader(CalibrationDataReader):
        """Batches of calibration faces; onnxruntime collects one batch at a time (``set_range``) so memory
        holds one batch of intermediate tensors, not all of them (graphs with test-time augmentation or
        ensembles have many)."""

        def __init__(self) -> None:
            self.i, self.end = 0, n_batches

        def __len__(self) -> int:
            return n_batches

        def set_range(self, start_index: int, end_index: int) -> None:
            self.i, self.end = start_index, min(end_index, n_batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.i >= self.end:
                return None
            b = {"input": x[self.i * batch:(self.i + 1) * batch]}
            self.i += 1
            return b

    cm = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
          "entropy": CalibrationMethod.Entropy}[method]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "fp32.onnx"
        if isinstance(fp32_onnx, bytes):
            src.write_bytes(fp32_onnx)
        else:
            src.write_bytes(Path(fp32_onnx).read_bytes())
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre))
        # "CalibStridedMinMax" (despite its name, honoured by every calibrator): collect in strides of one batch.
        extra: dict[str, Any] = {"CalibStridedMinMax": 1}
        if method == "percentile":
            extra["CalibPercentile"] = 99.999
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        tail = float_tail(pre)
        import logging

        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # onnxruntime's per-tensor notes ("Axis 1 is out-of-range for weight ...")
        import contextlib
        import io

        try:  # (its calibrators also print() progress notes to stdout: kept out of the caller's output)
            with contextlib.redirect_stdout(io.StringIO()):
                quantize_static(str(pre), str(out_path), _Reader(), quant_format=QuantFormat.QDQ,
                                per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=cm, nodes_to_exclude=tail, extra_options=extra)
        finally:
            root.setLevel(level)
    return {"format": "onnxruntime static int8, QDQ, per-channel symmetric int8 weights, uint8 activations; "
                      "classifier heads and everything after them (softmax, ensemble average, log, temperature) "
                      "in float32",
            "calibration": method, "calibration_faces": int(len(x)),
            "calibration_data": "training split (seeded random sample)"}


def agreement(float_onnx: str | Path, int8_onnx: str | Path, faces: np.ndarray) -> dict[str, float]:
    """Top-1 agreement and max probability difference between a float and an int8 model on uint8 faces."""
    import onnxruntime as ort

    x = faces.astype(np.float32) / 255
    x = x[:, None] if x.ndim == 3 else x

    def probs(path: str | Path) -> np.ndarray:
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        z = np.concatenate([s.run(None, {"input": x[i:i + 256]})[0] for i in range(0, len(x), 256)])
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    a, b = probs(float_onnx), probs(int8_onnx)
    return {"top1_agreement": float((a.argmax(1) == b.argmax(1)).mean()),
            "max_prob_diff": float(np.abs(a - b).max()), "n": int(len(x))}
