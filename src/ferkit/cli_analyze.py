"""``ferkit analyze``: faces and their expressions in photos, videos and folders.

Exit status: 0 when every input was analysed (with or without faces), 1 when some inputs failed or a video
stopped early (the rest is written), 2 when nothing could be analysed or on a usage / output error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ferkit.errors import FerkitError, OutputError

EPILOG = """examples:
  ferkit analyze photo.jpg                      readable summary
  ferkit analyze talk.mp4 -o talk.csv --annotate out/
  ferkit analyze photos/ -o faces.parquet --landmarks
  ferkit analyze clip.mov --fps 5 --format jsonl | head

output columns: source, frame, time_s, face_id, x, y, w, h, det_score, emotion, sentiment,
sentiment_score, sharpness, one probability per class (angry ... contempt), [landmarks: 468 [x, y] points]
exit status: 0 all inputs analysed, 1 some failed, stopped early or had damaged frames, 2 nothing analysed /
usage error, 130 / 143 interrupted (Ctrl-C / SIGTERM; rows so far kept as OUT.partial)"""


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``analyze`` sub-command to ``ferkit``'s sub-parsers."""
    p = sub.add_parser(
        "analyze", help="find faces and their expressions in photos, videos and folders",
        description="One row per face per analysed frame: where it is and what it expresses. "
                    "Offline, on the CPU.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image, video, folder (recursive) or list file (@list, or any .txt / .lst file: a path a line)")
    out = p.add_argument_group("output")
    out.add_argument("-o", "--output", metavar="PATH",
                     help="write rows to PATH: .csv, .tsv, .jsonl, .json or .parquet ('-' for stdout)")
    out.add_argument("--format", choices=["csv", "tsv", "jsonl", "json", "parquet"],
                     help="output format (default: from the extension; without -o, rows go to stdout)")
    out.add_argument("--annotate", metavar="DIR", help="write annotated images / videos to DIR")
    out.add_argument("--landmarks", action="store_true", help="add the 468 mesh points of each face")
    out.add_argument("--sentiment-map", default="valence", choices=["valence", "debate"],
                     help="how emotions map to negative / neutral / positive (default: valence)")
    out.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    vid = p.add_argument_group("video")
    g = vid.add_mutually_exclusive_group()
    g.add_argument("--every", type=_positive_int, default=1, metavar="N", help="analyse every Nth frame")
    g.add_argument("--fps", type=_positive_float, metavar="F", help="analyse F frames per second")
    vid.add_argument("--start", type=_non_negative_float, metavar="S", help="start at S seconds")
    vid.add_argument("--end", type=_positive_float, metavar="S", help="stop at S seconds")
    vid.add_argument("--detect-every", type=_positive_int, metavar="K",
                     help="run the detector every K analysed frames and follow faces with the landmark mesh "
                          "in between (default: about every 0.2 s; 1 = every frame)")
    det = p.add_argument_group("faces")
    det.add_argument("--detector", default="blazeface", help="face detector: blazeface (default), mtcnn, "
                                                            "blazeface_short")
    det.add_argument("--score-threshold", type=_unit_float, metavar="T",
                     help="detector score threshold (default: the detector's, 0.5 for blazeface)")
    det.add_argument("--min-face-size", type=_non_negative_float, default=0.0, metavar="PX",
                     help="ignore faces smaller than PX pixels")
    det.add_argument("--max-faces", type=_positive_int, metavar="N", help="at most N faces per frame")
    det.add_argument("--no-detect", action="store_true", help="inputs are face crops: no detection")
    det.add_argument("--model", default="default", help="expression model: shipped name or path to .onnx")
    exe = p.add_argument_group("execution")
    exe.add_argument("--workers", type=_positive_int, metavar="N",
                     help="processes to use (default: the CPU cores, at most 4; a long video is cut into ranges, so "
                     "values can differ slightly from --workers 1: see the README)")
    exe.add_argument("--batch-size", type=_positive_int, default=16, metavar="N", help="frames per model batch")
    exe.add_argument("--no-recursive", action="store_true", help="do not descend into sub-folders")
    from ferkit.cli_video import add_video_options  # video analytics: --track --summary --report (ferkit.video)

    add_video_options(p)
    p.set_defaults(func=run)
    return p


# argparse type helpers: a bad value is a usage error (exit 2) with a clear message
def _int_type(low: int, high: int | None, phrase: str) -> Callable[[str], int]:
    """An argparse type: an integer in ``[low, high]``, else "expected <phrase>, got '...'"."""
    def parse(v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            n = None
        if n is None or n < low or (high is not None and n > high):
            raise argparse.ArgumentTypeError(f"expected {phrase}, got {v!r}")
        return n

    return parse


_positive_int = _int_type(1, None, "a positive integer")
_non_negative_int = _int_type(0, None, "an integer >= 0")


def _positive_float(v: str) -> float:
    x = _float(v)
    if not x > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {v!r}")
    return x


def _non_negative_float(v: str) -> float:
    x = _float(v)
    if not x >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {v!r}")
    return x


def _unit_float(v: str) -> float:
    x = _float(v)
    if not 0 <= x <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {v!r}")
    return x


def _float(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {v!r}") from None
    if x != x or x in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {v!r}")
    return x


def _refuse_overwriting_inputs(inputs: list[str], outputs: dict[str, str | None]) -> None:
    """An output path that is one of the input files (``-o photo.jpg --format csv``, ``-o list.txt``, a photo of an
    input folder) would replace it, and two outputs on one file would overwrite each other: refuse."""
    import os

    from ferkit.io.media import MEDIA_EXTENSIONS

    named = [i[1:] if i.startswith("@") and not os.path.exists(i) else i for i in inputs if i]  # @list files too
    files = {os.path.realpath(i) for i in named if os.path.isfile(i)}
    folders = [os.path.join(os.path.realpath(i), "") for i in named if os.path.isdir(i)]
    seen: dict[str, str] = {}
    for opt, out in outputs.items():
        if not out or out == "-" or (os.path.exists(out) and not os.path.isfile(out)):
            continue  # standard output, /dev/null, a FIFO: written in place, nothing to replace
        real = os.path.realpath(out)
        in_folder = os.path.isfile(real) and os.path.splitext(real)[1].lower() in MEDIA_EXTENSIONS and any(
            real.startswith(f) for f in folders)  # a photo or video of an input folder
        if real in files or in_folder:
            raise OutputError(f"{opt} {out} is one of the inputs: it would be overwritten; choose another path")
        if real in seen:
            raise OutputError(f"{seen[real]} and {opt} are the same file ({out}); choose different paths")
        seen[real] = opt


def _warn(msg: str, quiet: bool = False) -> None:
    if not quiet:
        print(f"ferkit: warning: {msg}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run ``ferkit analyze``; returns the exit status."""
    from ferkit.io import open_sink, sink_format
    from ferkit.pipeline import Analyzer
    from ferkit.results import AnalysisResults, FaceTable, SourceStatus, arrow_schema, columns, write_tables

    if args.output is None and args.format == "parquet":
        raise OutputError("Parquet cannot go to standard output; give a path with -o out.parquet")
    if args.end is not None and args.end <= (args.start or 0.0):
        raise FerkitError(f"--end ({args.end}) must be after --start ({args.start or 0.0})")
    _refuse_overwriting_inputs(args.inputs, {"-o": args.output, "--summary": args.summary, "--report": args.report})
    from ferkit.cli_video import AnalyzeHook  # video analytics hook (tracker, --summary / --report)

    video = AnalyzeHook(args)
    video.check()
    analyzer = Analyzer(
        detector=args.detector, score_threshold=args.score_threshold, min_face_size=args.min_face_size,
        max_faces=args.max_faces, model=args.model, every=args.every, fps=args.fps, start=args.start,
        end=args.end, detect_every=args.detect_every, detect=False if args.no_detect else "auto",
        landmarks=args.landmarks, sentiment_map=args.sentiment_map, batch_size=args.batch_size,
        workers=args.workers, tracker=video.tracker())
    classes = analyzer.classes
    to_stdout = args.output == "-" or (args.output is None and args.format is not None)
    sink: Any = None
    if args.output is not None or args.format is not None:
        target = "-" if to_stdout else args.output
        fmt = args.format or ("jsonl" if to_stdout else None)
        parquet = sink_format(target, fmt) == "parquet"
        sink = open_sink(target, format=fmt, columns=columns(classes, args.landmarks),  # fails before any work
                         schema=arrow_schema(classes, args.landmarks) if parquet else None)
    summary = AnalysisResults(classes, args.sentiment_map, with_landmarks=False) if sink is None else None
    statuses: list[SourceStatus] = []
    held: list[SourceStatus] = []  # a failure is reported as an error, not a warning, if it is the only input
    rows = 0
    try:
        with analyzer:
            for item in analyzer.iter_analyze(args.inputs, progress=not args.quiet, annotate=args.annotate,
                                              recursive=not args.no_recursive):
                if isinstance(item, FaceTable):
                    video.add(item)  # video analytics hook
                    if sink is not None:
                        rows += write_tables(sink, [item], classes, analyzer.sentiment_matrix, args.landmarks)
                    else:
                        assert summary is not None
                        summary.add(item)
                    continue
                statuses.append(item)
                if not item.ok:
                    held.append(item)
                elif item.frames_lost:  # analysed, but a damaged stretch of the video was skipped
                    _warn(item.describe())
                if len(statuses) > 1:
                    for h in held:
                        _warn(h.describe(), args.quiet and h.status == "partial")
                    held.clear()
    except BaseException:
        if sink is not None:
            sink.abort()
            if sink.partial_path is not None:
                print(f"ferkit: the {sink.rows_written} rows written before the stop are kept in {sink.partial_path}",
                      file=sys.stderr)
        raise
    analysed = [s for s in statuses if s.status != "failed"]
    if len(statuses) == 1 and held and held[0].status == "partial":
        _warn(held[0].describe())
    if sink is not None:
        if not analysed and not to_stdout:
            sink.abort()  # nothing analysed: leave no empty file behind
        else:
            sink.close()
            if not args.quiet and not to_stdout:
                print(f"ferkit: {rows} row{'s' if rows != 1 else ''} from {len(analysed)} input"
                      f"{'s' if len(analysed) != 1 else ''} written to {args.output}", file=sys.stderr)
    else:
        assert summary is not None
        summary.statuses = statuses
        text = _summary_text(summary)
        if text:
            print(text)
    if analysed:
        video.finish(classes, statuses)  # video analytics hook: writes --summary / --report
    if not analysed:
        if len(statuses) == 1:
            print(f"ferkit: error: {statuses[0].describe()}", file=sys.stderr)
        else:
            print(f"ferkit: error: none of the {len(statuses)} inputs could be analysed", file=sys.stderr)
        return 2
    failed = [s for s in statuses if not s.clean]
    if failed and not args.quiet and len(statuses) > 1:
        print(f"ferkit: {len(failed)} of {len(statuses)} inputs failed, stopped early or had damaged frames",
              file=sys.stderr)
    return 1 if failed else 0


def _summary_text(res: Any, max_face_lines: int = 60) -> str:
    """Readable summary: per source a line, per photo face a line, per video the emotion shares."""
    import numpy as np

    lines: list[str] = []
    shown = 0
    by_source: dict[str, list[Any]] = {}
    for row in res:
        by_source.setdefault(row.source, []).append(row)
    for st in res.statuses:
        if st.status == "failed":
            continue
        rows = by_source.get(st.source, [])
        lines.append(st.describe())
        if st.kind != "video":
            for r in rows:
                if shown >= max_face_lines:
                    break
                x, y, w, h = r.box
                top = sorted(r.probabilities.items(), key=lambda kv: -kv[1])[:3]
                probs = ", ".join(f"{c} {p:.2f}" for c, p in top)
                lines.append(f"  face {r.face_id}: box {x:.0f},{y:.0f} {w:.0f}x{h:.0f}  {r.emotion:<8} ({probs})  "
                             f"{r.sentiment} {r.sentiment_score:+.2f}")
                shown += 1
        elif rows:
            emo = [r.emotion for r in rows]
            names, counts = np.unique(emo, return_counts=True)
            share = ", ".join(f"{n} {100 * c / len(emo):.0f}%" for n, c in sorted(zip(names, counts),
                                                                                 key=lambda t: -t[1]))
            mean_s = float(np.mean([r.sentiment_score for r in rows]))
            lines.append(f"  emotions: {share}")
            lines.append(f"  mean sentiment score {mean_s:+.2f} (use -o rows.csv for every face in every frame)")
    if shown >= max_face_lines:
        lines.append(f"  ... (use -o faces.csv for all {len(res)} faces)")
    return "\n".join(lines)
