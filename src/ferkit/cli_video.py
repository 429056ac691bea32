"""``ferkit report`` and ``ferkit evaluate-videos``, and the ``--track / --summary / --report`` options of
``ferkit analyze`` (their logic lives here and in :mod:`ferkit.video`)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from ferkit.cli_analyze import _non_negative_float, _non_negative_int, _positive_float, _unit_float
from ferkit.errors import FerkitError, InputError

RESULT_EXTS = {".csv", ".tsv", ".jsonl", ".json", ".parquet"}

REPORT_EPILOG = """examples:
  ferkit report talk.mp4 -o talk.html                 analyse, track and report one video
  ferkit report videos/ -o reports/index.html --fps 5 one page per video plus an index page
  ferkit report rows.csv -o report.html               report saved rows of `ferkit analyze -o rows.csv`
  ferkit report talk.mp4 -o r.html --summary s.csv --smooth 0.5 --sentiment-map debate"""

EVAL_EPILOG = """gold file: CSV with columns video,label; labels are classes (angry disgust fear happy sad surprise
neutral [contempt]) or sentiments (negative neutral positive). PREDICTIONS: the --summary CSV of
`ferkit analyze --summary` / `ferkit report --summary` (it lists videos without faces), or a rows file."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``report`` and ``evaluate-videos`` to ``ferkit``'s sub-parsers."""
    p = sub.add_parser("report", help="HTML report of videos: who showed what, when",
                       description="One self-contained HTML page per video (timelines, sentiment, distributions, "
                                   "peak-moment thumbnails, tables, settings) and an index page across videos.",
                       epilog=REPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="VIDEO_OR_RESULTS",
                   help="videos / folders (analysed now) or result tables written by `ferkit analyze -o`")
    p.add_argument("-o", "--output", required=True, metavar="HTML",
                   help="report page (with several videos: the index page; video pages go beside it)")
    p.add_argument("--summary", metavar="CSV", help="also write the per-video and per-track summary table")
    p.add_argument("--no-thumbnails", action="store_true", help="do not re-read the videos for face thumbnails")
    p.add_argument("--title", help="page title")
    g = p.add_argument_group("analysis (video inputs)")
    ex = g.add_mutually_exclusive_group()
    ex.add_argument("--every", type=int, default=1, metavar="N", help="analyse every Nth frame")
    ex.add_argument("--fps", type=float, metavar="F", help="analyse F frames per second")
    g.add_argument("--model", default="default", help="expression model")
    g.add_argument("--workers", type=int, metavar="N", help="processes to use")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_video_options(p, with_track=False)
    p.set_defaults(func=cmd_report)

    e = sub.add_parser("evaluate-videos", help="check clip verdicts against gold labels",
                       description="Accuracy, confusion matrix and a per-video table of clip verdicts against a "
                                   "gold-label CSV.", epilog=EVAL_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("predictions", metavar="PREDICTIONS", help="summary CSV or rows file (csv/tsv/jsonl/parquet)")
    e.add_argument("--labels", required=True, metavar="GOLD_CSV", help="CSV with columns video,label")
    e.add_argument("--verdict", choices=["peak", "mean", "majority", "weighted"],
                   help="verdict method (rows files only; a summary file keeps its verdicts)")
    e.add_argument("--sentiment-map", default="valence", choices=["valence", "debate"],
                   help="for sentiment labels with a rows file")
    e.add_argument("--min-quality", type=_unit_float, default=0.2,
                   help="rows files: leave out faces below this quality")
    e.add_argument("--missing-as-no-face", action="store_true",
                   help="gold videos missing from the predictions count as videos without a face (not an error)")
    e.add_argument("--json", action="store_true", help="JSON on stdout instead of Markdown")
    e.add_argument("--out", metavar="CSV", help="write the per-video table here")
    e.set_defaults(func=cmd_evaluate_videos)


def add_video_options(p: argparse.ArgumentParser, with_track: bool = True) -> None:
    """Tracking / smoothing / summary options (shared by ``report`` and ``analyze``)."""
    g = p.add_argument_group("video analytics")
    if with_track:
        g.add_argument("--track", action="store_true", help="stable face_id per person across frames")
        g.add_argument("--summary", metavar="CSV", help="write one summary row per video and per tracked face")
        g.add_argument("--report", metavar="HTML",
                       help="write an HTML report (one page; with several videos an index and a page per video)")
    g.add_argument("--max-missed", type=_non_negative_int, default=25, metavar="N",
                   help="keep a face's id through N analysed frames without it (default 25)")
    g.add_argument("--smooth", type=_non_negative_float, default=0.0, metavar="S",
                   help="summaries and reports: smooth each face's probabilities over S seconds (default 0: off; "
                        "the rows keep the per-frame values)")
    g.add_argument("--smooth-method", choices=["ema", "mean"], default="ema")
    g.add_argument("--min-quality", type=_unit_float, default=0.2, metavar="Q",
                   help="summaries and reports: leave out faces of quality below Q (0..1: size, detector score, "
                        "sharpness, and head turn with --landmarks; the rows keep every face)")
    g.add_argument("--verdict", choices=["peak", "mean", "majority", "weighted"], default="peak",
                   help="clip verdict: peak (default: mean over the most expressive half of the frames), mean, "
                        "majority, weighted (neutral down-weighted)")
    g.add_argument("--interval", type=_positive_float, metavar="S",
                   help="summary interval in seconds (report tables)")
    if "--sentiment-map" not in p._option_string_actions:
        g.add_argument("--sentiment-map", default="valence", choices=["valence", "debate"])


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """:class:`ferkit.video.VideoSettings` keywords from parsed options."""
    return {"track": True, "max_missed": args.max_missed, "smooth_s": args.smooth,
            "smooth_method": args.smooth_method, "min_quality": args.min_quality, "verdict": args.verdict,
            "sentiment_map": args.sentiment_map, "interval_s": args.interval}


def _is_results(path: str) -> bool:
    p = Path(path)
    return p.is_file() and p.suffix.lower() in RESULT_EXTS


def cmd_report(args: argparse.Namespace) -> int:
    """Run ``ferkit report``."""
    from ferkit.video import VideoAnalytics

    kinds = {_is_results(i) for i in args.inputs}
    if len(kinds) > 1:
        raise InputError("give either videos / folders or result tables, not both")
    opts = settings_from_args(args)
    from ferkit.cli_analyze import _refuse_overwriting_inputs

    _refuse_overwriting_inputs(args.inputs, {"-o": args.output, "--summary": args.summary})
    check_outputs(opts, args.summary)  # bad settings and output names fail before any analysis
    failed: list[Any] = []
    analysed = 0
    if kinds == {True}:
        import pandas as pd

        from ferkit.video import read_rows

        df = pd.concat([_rows_with_findable_sources(read_rows(i), i) for i in args.inputs], ignore_index=True)
        if not args.no_thumbnails:
            missing = sorted({str(x) for x in df["source"].unique() if not Path(str(x)).is_file()})
            if missing and not args.quiet:
                shown = ", ".join(missing[:5]) + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
                print(f"ferkit: warning: no thumbnails for {len(missing)} source{'s' if len(missing) != 1 else ''}"
                      f" not found as files: {shown}", file=sys.stderr)
        va = VideoAnalytics.from_frame(df, **opts)
    else:
        from ferkit.pipeline import Analyzer
        from ferkit.video import Tracker

        with Analyzer(every=args.every, fps=args.fps, model=args.model, workers=args.workers,
                      sentiment_map=args.sentiment_map, tracker=Tracker(max_missed=args.max_missed)) as az:
            res = az.analyze(list(args.inputs), progress=not args.quiet)
        failed = [s for s in res.statuses if not s.clean]  # failed, stopped early or damaged frames: exit 1
        analysed = sum(s.status in ("ok", "no_face", "partial") for s in res.statuses)
        for s in failed:
            print(f"ferkit: warning: {s.describe()}", file=sys.stderr)
        if not analysed:  # nothing to report: say so, and write no empty report
            print(f"ferkit: error: none of the {len(res.statuses)} input{'s' if len(res.statuses) != 1 else ''} "
                  "could be analysed: no report written", file=sys.stderr)
            return 2
        opts["analysis"] = _analysis_settings(args, tracked=True)
        opts["track"] = False  # the analyzer's tracker assigned the ids
        va = VideoAnalytics.from_results(res, **opts)
    _write_outputs(va, args.summary, args.output, not args.no_thumbnails, args.title, args.quiet)
    if failed:  # as `ferkit analyze`: 1 some inputs failed or stopped early, 2 none could be analysed
        return 1 if analysed else 2
    return 0


def _rows_with_findable_sources(df: Any, rows_file: str) -> Any:
    """Relative sources that are not found from the current folder but are from the rows file's folder (a table
    written elsewhere) are rewritten to that path, so their videos can be re-read for thumbnails."""
    base = Path(rows_file).resolve().parent
    fixed = {}
    for src in df["source"].unique():
        p = Path(str(src))
        if not p.is_absolute() and not p.exists() and (base / p).is_file():
            fixed[src] = str(base / p)
    if fixed:
        df = df.copy()
        df["source"] = df["source"].map(lambda x: fixed.get(x, x))
    return df


def check_outputs(opts: dict[str, Any], summary: str | None, report: str | None = None) -> None:
    """Before any analysis: the video settings are valid, the summary's format is known from its extension, and
    the folders of the summary / report exist (or can be made) and are writable."""
    from ferkit.errors import OutputError
    from ferkit.io.sinks import sink_format
    from ferkit.video import VideoSettings

    VideoSettings(**opts).check()
    if summary:
        sink_format(summary)  # raises on an unknown extension
    for target in (summary, report):
        if target:
            folder = Path(target).resolve().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot create folder {folder} for {target}: {exc.strerror or exc}") from None
            try:  # a real write (os.access says yes to root even where the file system says no)
                tempfile.TemporaryFile(dir=folder).close()
            except OSError as exc:
                raise OutputError(f"cannot write {target}: folder {folder} is not writable "
                                  f"({exc.strerror or exc})") from None


def _analysis_settings(args: argparse.Namespace, tracked: bool) -> dict[str, Any]:
    """How the rows were made, for the report's settings table."""
    keys = ("model", "fps", "every", "start", "end", "detector", "sentiment_map")
    out = {k: getattr(args, k) for k in keys if getattr(args, k, None) not in (None, 1) or k == "model"}
    if tracked:
        out["tracked"] = f"during analysis (max_missed {args.max_missed})"
    return out


def _write_outputs(va: Any, summary: str | None, report: str | None, thumbnails: bool = True,
                   title: str | None = None, quiet: bool = False) -> int:
    from ferkit.io import write_rows

    if summary:
        table = va.summary_table()
        write_rows(table, summary)
        if not quiet:
            print(f"ferkit: summary of {len(va.sources)} video{'s' if len(va.sources) != 1 else ''} written to "
                  f"{summary}", file=sys.stderr)
    if report:
        pages = va.report(report, thumbnails=thumbnails, title=title)
        if not quiet:
            print(f"ferkit: report written to {pages[0]}" + (f" (+{len(pages) - 1} video pages)"
                                                             if len(pages) > 1 else ""), file=sys.stderr)
    return 0


def cmd_evaluate_videos(args: argparse.Namespace) -> int:
    """Run ``ferkit evaluate-videos``."""
    from ferkit.video import VideoAnalytics, evaluate_verdicts, read_gold, read_rows
    from ferkit.video.evaluate import markdown_report

    gold = read_gold(args.labels)
    summary, counts = _read_predictions(args, read_rows, VideoAnalytics)
    rep = evaluate_verdicts(summary, gold, counts, missing_as_no_face=args.missing_as_no_face,
                            gold_name=args.labels)
    if args.out:
        import pandas as pd

        from ferkit.io import write_rows

        write_rows(pd.DataFrame(rep["per_video"]), args.out)
    try:
        print(json.dumps(rep, indent=1) if args.json else markdown_report(rep))
        sys.stdout.flush()
    except BrokenPipeError:  # `ferkit evaluate-videos ... | head`
        sys.stderr.close()
    return 0


def _read_predictions(args: argparse.Namespace, read_rows: Any, VideoAnalytics: Any) -> tuple[Any, Any]:

    p = Path(args.predictions)
    if not p.is_file():
        raise InputError(f"{p}: no such predictions file")
    from ferkit.video.analytics import read_table

    df = read_table(p)
    if "verdict" in df.columns:  # a summary table (any format ferkit writes)
        if "level" in df.columns:
            df = df[df["level"] == "video"]
        if args.verdict and args.verdict != "peak":
            print("ferkit: warning: --verdict is ignored for a summary file (its verdicts are kept)",
                  file=sys.stderr)
        return df.reset_index(drop=True), None
    rows = read_rows(p)
    va = VideoAnalytics.from_frame(rows, verdict=args.verdict or "peak", sentiment_map=args.sentiment_map,
                                   min_quality=args.min_quality)
    t = va.tracks()
    if len(t) and "low_quality" in t.columns:
        t = t[~t["low_quality"].astype(bool)]  # the frames the summary counts
    counts = {s: g["emotion"].value_counts().to_dict() for s, g in t.groupby("source")} if len(t) else {}
    return va.summary("video"), counts


# ---------------------------------------------------------------------------------------- `ferkit analyze` hooks


class AnalyzeHook:
    """What ``ferkit analyze --track --summary --report`` adds: a tracker for the analyzer, and the rows kept to
    summarise and report them at the end."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.wanted = bool(getattr(args, "summary", None) or getattr(args, "report", None))
        self.enabled = self.wanted or bool(getattr(args, "track", False))
        self.tables: list[Any] = []

    def check(self) -> None:
        """Refuse bad --summary / --report paths and video settings before any analysis is done."""
        if not self.wanted:
            return
        from ferkit.errors import OutputError

        if self.args.report and Path(self.args.report).suffix.lower() not in (".html", ".htm"):
            raise OutputError(f"--report {self.args.report}: give an .html file name")
        check_outputs(settings_from_args(self.args), self.args.summary, self.args.report)

    def tracker(self) -> Any:
        """A :class:`ferkit.video.Tracker` when tracking is asked for (``--summary`` / ``--report`` imply it)."""
        if not self.enabled:
            return None
        from ferkit.video import Tracker

        return Tracker(max_missed=self.args.max_missed)

    def add(self, table: Any) -> None:
        if self.wanted:
            self.tables.append(table)

    def finish(self, classes: Any, statuses: list[Any]) -> None:
        """Write ``--summary`` / ``--report`` (no-op when neither was asked for)."""
        if not self.wanted:
            return
        from ferkit.results import AnalysisResults
        from ferkit.video import VideoAnalytics

        res = AnalysisResults(classes, self.args.sentiment_map, with_landmarks=bool(self.args.landmarks))
        for t in self.tables:
            res.add(t)
        res.statuses = list(statuses)
        opts = settings_from_args(self.args)
        opts["track"] = False  # the analyzer's tracker already assigned the ids
        opts["analysis"] = _analysis_settings(self.args, tracked=True)
        va = VideoAnalytics.from_results(res, **opts)
        try:
            _write_outputs(va, self.args.summary, self.args.report, True, None, self.args.quiet)
        except FerkitError:
            raise
        except OSError as exc:
            from ferkit.errors import OutputError

            raise OutputError(f"cannot write the summary / report: {exc}") from None
