"""Benchmark ferkit.io: video decoding (frames/s) and image loading (ms per image).

Compares ``ferkit.io.iter_frames`` with a plain ``cv2.VideoCapture`` loop on the sample video, and
``ferkit.io.load_image`` with ``cv2.imread`` and a naive Pillow load on a 1 MP JPEG. Runs are
interleaved and the median of ``--repeat`` runs is reported (the machine may be shared).

    .venv/bin/python bench/bench_io.py [--repeat 7] [--video PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

try:
    from ferkit.io import iter_frames, load_image
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from ferkit.io import iter_frames, load_image

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "samples"


def _cv2_capture(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n


def _pyav_bgr24(path: Path) -> int:
    import av

    n = 0
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            frame.to_ndarray(format="bgr24")
            n += 1
    return n


def _ferkit(path: Path, **kw: object) -> int:
    return sum(1 for _ in iter_frames(path, **kw))


def _time(fn: Callable[[], int]) -> tuple[float, int]:
    t = time.perf_counter()
    n = fn()
    return time.perf_counter() - t, n


def bench_video(video: Path, repeat: int) -> dict[str, dict[str, float]]:
    with iter_frames(video) as stream:
        info = stream.info
    cases: dict[str, Callable[[], int]] = {
        "cv2.VideoCapture.read": lambda: _cv2_capture(video),
        "pyav decode + to_ndarray(bgr24)": lambda: _pyav_bgr24(video),
        "ferkit iter_frames (all)": lambda: _ferkit(video),
        "ferkit iter_frames every=10": lambda: _ferkit(video, every=10),
        "ferkit iter_frames fps=5": lambda: _ferkit(video, fps=5),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    kept: dict[str, int] = {}
    for fn in cases.values():  # warm-up (imports, page cache)
        fn()
    for _ in range(repeat):
        for name, fn in cases.items():
            dt, n = _time(fn)
            times[name].append(dt)
            kept[name] = n
    out = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        out[name] = {
            "seconds": med,
            "frames_kept": kept[name],
            "decoded_fps": info.n_frames / med,
            "kept_fps": kept[name] / med,
        }
    return out


def bench_image(repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "1mp.jpg"
        src = SAMPLES / "multi_face.jpg"
        base = (
            Image.open(src).convert("RGB") if src.exists() else Image.effect_mandelbrot((1224, 816), (-2, -1, 1, 1), 50)
        )
        base.convert("RGB").resize((1224, 816)).save(path, quality=90)

        def pil_naive() -> np.ndarray:
            with Image.open(path) as im:
                return np.ascontiguousarray(np.asarray(im.convert("RGB"))[..., ::-1])

        cases: dict[str, Callable[[], object]] = {
            "cv2.imread": lambda: cv2.imread(str(path)),
            "Pillow naive (convert + [..., ::-1])": pil_naive,
            "ferkit load_image": lambda: load_image(path),
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        for fn in cases.values():
            fn()
        for _ in range(repeat):
            for name, fn in cases.items():
                t = time.perf_counter()
                for _ in range(20):
                    fn()
                times[name].append((time.perf_counter() - t) / 20)
        return {name: statistics.median(ts) * 1000 for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--video", type=Path, default=SAMPLES / "WolfgangLanger_Pexels.mp4")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()
    if not args.video.exists():
        sys.exit(f"video not found: {args.video}")
    video = bench_video(args.video, args.repeat)
    image = bench_image(args.repeat)
    if args.json:
        print(json.dumps({"video": video, "image_ms": image}, indent=2))
        return
    print(f"video: {args.video.name} (median of {args.repeat} runs, interleaved)")
    for name, r in video.items():
        print(
            f"  {name:34s} {r['decoded_fps']:7.0f} decoded frames/s   ({r['frames_kept']} frames kept,"
            f" {r['seconds'] * 1000:.0f} ms)"
        )
    print("image: 1224x816 JPEG (1 MP), ms per load")
    for name, ms in image.items():
        print(f"  {name:34s} {ms:7.2f} ms")


if __name__ == "__main__":
    main()
