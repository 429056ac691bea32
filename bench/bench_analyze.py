"""End-to-end speed of ``ferkit analyze`` (and of the ``fer`` package side by side), all in one run.

Usage::

    python bench/bench_analyze.py [--video PATH] [--repeat 3] [--photos 42]
                                  [--fer --fer-python /tmp/fer-venv/bin/python]
                                  [--memory [--memory-minutes 60]] [--out bench/results/analyze.md]

Measures on the sample video (default ``WolfgangLanger_Pexels.mp4``, 640x360, 472 frames), every frame:

* decode only (``ferkit.io.iter_frames``, BGR frames);
* ferkit default (detector about every 0.2 s, faces followed by the mesh in between; this process plus one
  worker process per extra core, each decoding its own time range), warm (models loaded) and cold (first
  call, worker start included), and the whole CLI as a fresh process (imports and model loading included);
* ferkit detecting on every frame (``--detect-every 1``), and ferkit in one process (``workers=1``);
* photos per second on 1 MP single-face photos (and 256 px photos), a folder at a time;
* with ``--fer``: the ``fer`` package (mini-Xception + OpenCV Haar cascade, its default) on the same video and
  photos, run by ``--fer-python`` (a separate venv: ``pip install fer==25.10.3 "setuptools<81"
  "opencv-contrib-python<5"``);
* with ``--memory``: peak RSS of ``ferkit analyze`` on a synthetic 1-hour 1080p video (made with PyAV in a
  temporary folder, deleted afterwards), written to CSV as the CLI does.

Writes a Markdown report (``--out``) and prints it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "data" / "samples"
DEFAULT_VIDEO = SAMPLES / "WolfgangLanger_Pexels.mp4"
PHOTO_SAMPLES = ("single_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg",
                 "Image_with_alpha.png", "BWPictureHuman.jpg")

# Run by the fer venv's Python (`--fer-child`): no ferkit import here.
FER_CHILD = r"""
import json, sys, time, os, warnings
warnings.filterwarnings("ignore")
import cv2
from fer.fer import FER
video, photo_dirs = sys.argv[1], sys.argv[2:]
det = FER(mtcnn=False)
det.detect_emotions(cv2.imread(os.path.join(photo_dirs[0], sorted(os.listdir(photo_dirs[0]))[0])))  # warm up
out = {}
cap = cv2.VideoCapture(video)
n = faces = with_face = 0
t = time.perf_counter()
while True:
    ok, frame = cap.read()
    if not ok:
        break
    r = det.detect_emotions(frame)
    n += 1; faces += len(r); with_face += bool(r)
out["video"] = {"frames": n, "faces": faces, "frames_with_faces": with_face, "seconds": time.perf_counter() - t}
for d in photo_dirs:
    files = sorted(os.path.join(d, f) for f in os.listdir(d))
    t = time.perf_counter()
    found = 0
    for f in files:
        found += bool(det.detect_emotions(cv2.imread(f)))
    out[os.path.basename(d)] = {"photos": len(files), "with_face": found, "seconds": time.perf_counter() - t}
print("RESULT " + json.dumps(out))
"""


def load_note() -> str:
    try:
        la = os.getloadavg()
        return f"load average {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} (1 / 5 / 15 min)"
    except OSError:
        return "load average unknown"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def make_photos(folder: Path, n: int, megapixels: float | None, long_side: int | None) -> Path:
    """n single-face photos resized to about ``megapixels`` MP (or ``long_side`` px), as JPEG."""
    import cv2

    from ferkit.io import load_image

    folder.mkdir(parents=True, exist_ok=True)
    base = [load_image(SAMPLES / name) for name in PHOTO_SAMPLES if (SAMPLES / name).is_file()]
    for i in range(n):
        img = base[i % len(base)]
        h, w = img.shape[:2]
        s = (megapixels * 1e6 / (w * h)) ** 0.5 if megapixels else long_side / max(h, w)
        out = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"photo_{i:03d}.jpg"), out, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


def fmt_rate(n: int, secs: list[float]) -> str:
    best, med = n / min(secs), n / statistics.median(secs)
    return f"{best:.0f} (median {med:.0f})"


def run_fer(python: str, video: Path, dirs: list[Path]) -> dict | None:
    cmd = [python, "-c", FER_CHILD, str(video), *map(str, dirs)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"fer run failed: {exc}", file=sys.stderr)
        return None
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    print(f"fer run failed (exit {p.returncode}): {p.stderr[-2000:]}", file=sys.stderr)
    return None


# ------------------------------------------------------------------------------------------------ memory
def make_long_video(path: Path, minutes: float, fps: int = 30) -> Path:
    """A 1080p H.264 video of ``minutes``: one encoded minute of a moving face photo, its packets repeated."""
    import av
    import cv2
    import numpy as np

    from ferkit.io import load_image

    face = load_image(SAMPLES / "single_face.jpg")
    bg = cv2.resize(load_image(SAMPLES / "free-mountain-vector-01.jpg"), (1920, 1080))
    clip = path.with_suffix(".clip.mp4")
    n_clip = 60 * fps
    with av.open(str(clip), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = 1920, 1080, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "28", "g": "250"}
        for i in range(n_clip):
            img = bg.copy()
            x = int(700 + 300 * np.sin(i / 40))
            img[200:762, x:x + 572] = face
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    reps = max(1, round(minutes))
    with av.open(str(clip)) as src, av.open(str(path), "w") as dst:
        ins = src.streams.video[0]
        outs = dst.add_stream_from_template(ins)
        packets = [p for p in src.demux(ins) if p.size]
        span = n_clip * int(round(1 / (fps * ins.time_base)))
        for r in range(reps):
            for p in packets:
                p.stream = outs
                if r:
                    p.pts += span
                    p.dts += span
                dst.mux(p)
    clip.unlink()
    return path


def tree_rss_mb(pid: int, field: str = "Rss") -> dict[int, float]:
    """RSS (or ``field="Pss"``: proportional set size, shared pages split between processes) in MB of a process
    and its descendants."""
    out: dict[int, float] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    out[p] = int(line.split()[1]) / 1024
            for t in Path(f"/proc/{p}/task").iterdir():
                kids = (t / "children").read_text().split()
                todo.extend(int(k) for k in kids)
        except OSError:
            continue
    return out


def memory_run(minutes: float, every: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="ferkit_long_"))
    try:
        t = time.perf_counter()
        video = make_long_video(tmp / "long_1080p.mp4", minutes)
        made = time.perf_counter() - t
        cmd = [sys.executable, "-m", "ferkit", "analyze", str(video), "--every", str(every), "-o",
               str(tmp / "rows.csv"), "-q"]
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env)
        peak_main = peak_total = peak_any = peak_pss = 0.0
        samples = []
        while proc.poll() is None:
            rss = tree_rss_mb(proc.pid)
            pss = tree_rss_mb(proc.pid, "Pss")
            if rss:
                peak_main = max(peak_main, rss.get(proc.pid, 0.0))
                peak_any = max(peak_any, max(rss.values()))
                peak_total = max(peak_total, sum(rss.values()))
                peak_pss = max(peak_pss, sum(pss.values()))
                samples.append(sum(pss.values()))
            time.sleep(0.5)
        secs = time.perf_counter() - t
        rows = sum(1 for _ in open(tmp / "rows.csv")) - 1 if (tmp / "rows.csv").exists() else 0
        n = len(samples)
        q = [samples[int(n * f)] for f in (0.1, 0.5, 0.9)] if n >= 10 else []
        return {"minutes": minutes, "every": every, "make_s": made, "seconds": secs, "rows": rows,
                "exit": proc.returncode, "peak_main_mb": peak_main, "peak_process_mb": peak_any,
                "peak_total_mb": peak_total, "peak_pss_mb": peak_pss, "rss_deciles_mb": q,
                "size_mb": video.stat().st_size / 1e6}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def memory_report(mem: dict, cmd: str | None) -> str:
    head = ["## Memory on a long video", ""]
    if cmd:
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        head = ["# ferkit analyze: memory on a long video", "", f"- date: {now}; command: `{cmd}`; {load_note()}", ""]
    q = " / ".join(f"{x:.0f}" for x in mem["rss_deciles_mb"])
    return "\n".join(head + [
        f"Synthetic {mem['minutes']:.0f}-minute 1920x1080 30 fps H.264 video ({mem['size_mb']:.0f} MB, made in "
        f"{mem['make_s']:.0f} s), `ferkit analyze long.mp4 --every {mem['every']} -o rows.csv -q` as a fresh process: "
        f"{mem['seconds']:.0f} s, exit {mem['exit']}, {mem['rows']} rows.",
        "",
        f"- peak RSS: main process {mem['peak_main_mb']:.0f} MB; largest single process "
        f"{mem['peak_process_mb']:.0f} MB; RSS of all ferkit processes added up {mem['peak_total_mb']:.0f} MB "
        "(counts the pages the forked worker shares with the main process twice)",
        f"- peak PSS of all ferkit processes (shared pages counted once): {mem['peak_pss_mb']:.0f} MB",
        f"- total PSS at 10 / 50 / 90 % of the run: {q} MB (flat = streaming)",
    ]) + "\n"


# ------------------------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--photos", type=int, default=42, help="number of 1 MP photos")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--fer", action="store_true", help="run the fer package side by side")
    ap.add_argument("--fer-python", default="/tmp/fer-venv/bin/python")
    ap.add_argument("--memory", action="store_true", help="peak RSS on a synthetic 1-hour 1080p video")
    ap.add_argument("--memory-minutes", type=float, default=60.0)
    ap.add_argument("--memory-every", type=int, default=1)
    ap.add_argument("--memory-only", action="store_true", help="only the memory check (report to --out)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "analyze.md")
    args = ap.parse_args()

    sys.path.insert(0, str(REPO / "src"))
    import ferkit
    from ferkit.io import iter_frames, probe_video

    if args.memory_only:
        mem = memory_run(args.memory_minutes, args.memory_every)
        text = memory_report(mem, "python bench/bench_analyze.py " + " ".join(sys.argv[1:]))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(text)
        return
    video = args.video
    info = probe_video(video)
    load_start = load_note()
    R = args.repeat
    res: dict[str, str] = {}
    lines: list[str] = []

    # decode only
    n_frames = sum(1 for _ in iter_frames(video))
    secs = timed(lambda: sum(1 for _ in iter_frames(video)), R)
    res["decode"] = fmt_rate(n_frames, secs)

    def video_fps(**opts) -> tuple[str, str, int]:
        t = time.perf_counter()
        az = ferkit.Analyzer(**opts)
        r = az.analyze(video)
        cold = time.perf_counter() - t
        secs = timed(lambda: az.analyze(video), R)
        az.close()
        return fmt_rate(n_frames, secs), f"{n_frames / cold:.0f}", len(r)

    res["default"], res["default_cold"], faces_default = video_fps(workers=args.workers)
    res["every1"], res["every1_cold"], faces_every1 = video_fps(workers=args.workers, detect_every=1)
    res["one_proc"], res["one_proc_cold"], _ = video_fps(workers=1)

    # the CLI as a fresh process
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    with tempfile.TemporaryDirectory() as td:
        cli = [sys.executable, "-m", "ferkit", "analyze", str(video), "-o", str(Path(td) / "rows.csv"), "-q"]
        cli_secs = timed(lambda: subprocess.run(cli, env=env, check=True), R)
    res["cli"] = fmt_rate(n_frames, cli_secs)

    # photos
    tmp = Path(tempfile.mkdtemp(prefix="ferkit_bench_"))
    try:
        d1 = make_photos(tmp / "photos_1mp", args.photos, 1.0, None)
        d256 = make_photos(tmp / "photos_256px", args.photos, None, 256)
        photo_rates: dict[str, str] = {}
        found: dict[str, int] = {}
        for name, d in (("1mp", d1), ("256px", d256)):
            for w in (args.workers, 1):
                az = ferkit.Analyzer(workers=w)
                r = az.analyze(d)
                secs = timed(lambda az=az, d=d: az.analyze(d), R)
                az.close()
                photo_rates[f"{name}_w{w}"] = fmt_rate(args.photos, secs)
                found[name] = sum(1 for s in r.statuses if s.faces)
        fer = run_fer(args.fer_python, video, [d1, d256]) if args.fer else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    mem = memory_run(args.memory_minutes, args.memory_every) if args.memory else None
    load_end = load_note()

    # ------------------------------------------------------------------ report
    workers = args.workers or min(os.cpu_count() or 1, 4)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = "python bench/bench_analyze.py " + " ".join(sys.argv[1:])
    lines += [
        "# ferkit analyze: end-to-end speed",
        "",
        f"- date: {now}; command: `{cmd}`",
        f"- machine: {os.cpu_count()} CPU cores ({cpu_name()}), Python {platform.python_version()}, "
        f"onnxruntime {__import__('onnxruntime').__version__}; {load_start} at start, {load_end} at the end "
        "(other jobs share this machine: compare numbers from the same run only)",
        f"- video: `{video.name}` {info.width}x{info.height}, {info.fps:.2f} fps, {n_frames} frames, every frame "
        f"analysed; expression model: `{ferkit.Analyzer(workers=1).model_card.get('name', 'default')}` "
        f"({ferkit.Analyzer(workers=1).model_card.get('notes', '')})",
        f"- rates: best of {R} runs (median in brackets); warm = models loaded and worker processes started",
        "",
        "| what | frames/s |",
        "|---|---|",
        f"| decode only (PyAV, BGR frames, one process) | {res['decode']} |",
        f"| **ferkit default** ({workers} processes, detector every ~0.2 s + mesh tracking), warm | "
        f"**{res['default']}** |",
        f"| ferkit default, first call (worker start included) | {res['default_cold']} |",
        f"| ferkit CLI as a fresh process (`ferkit analyze video -o rows.csv`, imports + model load included) | "
        f"{res['cli']} |",
        f"| ferkit, detector on every frame (`--detect-every 1`), {workers} processes, warm | {res['every1']} |",
        f"| ferkit default in one process (`--workers 1`), warm | {res['one_proc']} |",
    ]
    fer_fps = None
    if fer:
        v = fer["video"]
        fer_fps = v["frames"] / v["seconds"]
        lines.append(f"| `fer` 25.10.3 (`FER(mtcnn=False)`: Haar + mini-Xception, TensorFlow on both cores), "
                     f"cv2 decode | {fer_fps:.0f} |")
    lines += ["", f"Faces found: ferkit default {faces_default} rows, every-frame detection {faces_every1} rows "
                  f"in {n_frames} frames"
              + (f"; fer {fer['video']['faces']} faces in {fer['video']['frames_with_faces']} frames" if fer else "")
              + "."]
    if fer_fps:
        best_default = float(res["default"].split()[0])
        best_cli = float(res["cli"].split()[0])
        lines += ["", f"**Ratio ferkit default / fer: {best_default / fer_fps:.1f}x** (warm); "
                      f"CLI as a fresh process / fer: {best_cli / fer_fps:.1f}x (fer's own start-up, ~10 s of "
                      "TensorFlow import, is not counted for fer)."]
    lines += ["", "## Photos", "", "| photos | ferkit, " + f"{workers} processes | ferkit, 1 process |"
              + (" fer |" if fer else ""), "|---|---|---|" + ("---|" if fer else "")]
    for name, label in (("1mp", f"{args.photos} single-face photos of ~1 MP (JPEG)"),
                        ("256px", "the same at 256 px (long side)")):
        row = f"| {label}: photos/s | {photo_rates[f'{name}_w{args.workers}']} | {photo_rates[f'{name}_w1']} |"
        if fer:
            f = fer[f"photos_{name}"]
            row += f" {f['photos'] / f['seconds']:.0f} |"
        lines.append(row)
    lines.append("")
    lines.append(f"Photos with a face found: ferkit {found['1mp']}/{args.photos} (1 MP), {found['256px']}/{args.photos}"
                 " (256 px)" + (f"; fer {fer['photos_1mp']['with_face']}/{args.photos} (1 MP), "
                                f"{fer['photos_256px']['with_face']}/{args.photos} (256 px)" if fer else "") + ".")
    if mem:
        lines += ["", memory_report(mem, None)]
    else:
        lines += ["", "Memory on a 1-hour 1080p video: `bench/results/analyze_memory.md` "
                      "(`python bench/bench_analyze.py --memory-only --memory-every 30 "
                      "--out bench/results/analyze_memory.md`)."]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
