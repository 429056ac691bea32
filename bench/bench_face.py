"""Speed of ferkit.face on video frames: detect, and detect + mesh, at batch 1 and batch 8, one thread.

Usage: ``python bench/bench_face.py [--video PATH] [--frames N] [--repeat R] [--profile]``

Reports milliseconds per frame (median of ``--repeat`` passes over the same decoded frames, decoding excluded),
the onnxruntime share, and the Python overhead of BlazeFace decode + NMS alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a plain checkout too

from ferkit.face import FaceMesh, create_detector

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "samples" / "WolfgangLanger_Pexels.mp4"


def read_frames(path: Path, n: int) -> list[np.ndarray]:
    """First ``n`` frames of a video (BGR)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise SystemExit(f"cannot read frames from {path}")
    return frames


class OrtTimer:
    """Wrap ``session.run`` to accumulate the time spent inside onnxruntime."""

    def __init__(self, *sessions) -> None:
        self.total = 0.0
        self._orig = []
        for s in sessions:
            run = s.run
            self._orig.append((s, run))

            def timed(*a, _run=run, **k):
                t = time.perf_counter()
                try:
                    return _run(*a, **k)
                finally:
                    self.total += time.perf_counter() - t

            s.run = timed

    def restore(self) -> None:
        for s, run in self._orig:
            s.run = run


def bench(frames: list[np.ndarray], batch: int, det, mesh, with_mesh: bool, repeat: int) -> tuple[float, float]:
    """Median ms per frame and the onnxruntime share (ms per frame)."""
    times, ort_times = [], []
    timer = OrtTimer(det.session, mesh.session)
    try:
        for _ in range(repeat + 1):  # first pass warms up
            timer.total = 0.0
            t = time.perf_counter()
            for i in range(0, len(frames), batch):
                chunk = frames[i:i + batch]
                dets = det.detect_batch(chunk)
                if with_mesh:
                    mesh.run_batch(chunk, dets)
            times.append((time.perf_counter() - t) / len(frames) * 1e3)
            ort_times.append(timer.total / len(frames) * 1e3)
    finally:
        timer.restore()
    return float(np.median(times[1:])), float(np.median(ort_times[1:]))


def decode_overhead(frames: list[np.ndarray], det, batch: int, repeat: int = 20) -> float:
    """ms per frame of BlazeFace post-processing (decode + weighted NMS + mapping) alone."""
    x, maps = det.preprocess(frames[:batch])
    raw_boxes, raw_scores = det.session.run(None, {"image": x})
    logits = raw_scores[..., 0]
    det.postprocess(raw_boxes, logits, maps)
    t = time.perf_counter()
    for _ in range(repeat):
        det.postprocess(raw_boxes, logits, maps)
    return (time.perf_counter() - t) / repeat / batch * 1e3


def preprocess_overhead(frames: list[np.ndarray], det, batch: int, repeat: int = 20) -> float:
    """ms per frame of BlazeFace pre-processing (letterbox + scaling) alone."""
    t = time.perf_counter()
    for _ in range(repeat):
        det.preprocess(frames[:batch])
    return (time.perf_counter() - t) / repeat / batch * 1e3


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--video", default=str(DEFAULT_VIDEO))
    p.add_argument("--frames", type=int, default=96)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--detector", default="blazeface")
    p.add_argument("--profile", action="store_true", help="cProfile detect+mesh at batch 8")
    args = p.parse_args(argv)
    cv2.setNumThreads(1)  # one core for OpenCV too
    frames = read_frames(Path(args.video), args.frames)
    det = create_detector(args.detector, threads=1)
    mesh = FaceMesh(threads=1)
    h, w = frames[0].shape[:2]
    faces = sum(len(d) for d in det.detect_batch(frames[:8]))
    print(f"video {Path(args.video).name} {w}x{h}, {len(frames)} frames, {faces} faces in the first 8, 1 thread")
    print(f"{'stage':24s} {'batch':>5s} {'ms/frame':>9s} {'onnxruntime':>12s} {'python':>8s}")
    for with_mesh in (False, True):
        for batch in (1, 8):
            ms, ort_ms = bench(frames, batch, det, mesh, with_mesh, args.repeat)
            name = "detect + mesh" if with_mesh else "detect"
            print(f"{name:24s} {batch:5d} {ms:9.2f} {ort_ms:12.2f} {ms - ort_ms:8.2f}")
    for batch in (1, 8):
        print(f"{'  decode+NMS only':24s} {batch:5d} {decode_overhead(frames, det, batch):9.3f}")
        print(f"{'  letterbox only':24s} {batch:5d} {preprocess_overhead(frames, det, batch):9.3f}")
    if args.profile:
        import cProfile
        import pstats

        def run() -> None:
            for i in range(0, len(frames), 8):
                chunk = frames[i:i + 8]
                mesh.run_batch(chunk, det.detect_batch(chunk))

        prof = cProfile.Profile()
        prof.runcall(run)
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
