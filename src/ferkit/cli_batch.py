"""``ferkit batch``, ``ferkit search``, ``ferkit tag`` and ``ferkit serve``.

``batch`` exit status: 0 every input analysed (with or without faces), 1 some failed, 2 none could be analysed
or a usage / output error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ferkit.cli_analyze import _int_type, _non_negative_float, _positive_float, _positive_int, _unit_float

BATCH_EPILOG = """examples:
  ferkit batch photos/ -o results/                        local process pool, one process per core
  ferkit batch @list.txt videos/ -o results/ --workers 2 --fps 2
  ferkit batch /mnt/archive -o results/ --engine dask --scheduler tcp://10.0.0.5:8786

results/: parts/*.parquet (rows as in `ferkit analyze`), status.csv (one row per input: ok / no_face / partial /
failed with the reason, timings), status.jsonl (the log). Re-running the same command finishes what is left;
changed inputs are redone. exit status: 0 all analysed, 1 some failed, 2 none analysed / usage error"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``batch``, ``search``, ``tag`` and ``serve`` to ``ferkit``'s sub-parsers."""
    _add_batch(sub)
    _add_search(sub)
    _add_tag(sub)
    _add_serve(sub)


# ================================================================================================ batch


def _add_batch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="analyse a large archive into a resumable job folder (Parquet parts)",
                       description="Resumable, idempotent batch analysis: killed and re-run, it does only the rest.",
                       epilog=BATCH_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="SRC", help="file, folder (recursive) or list file (@list.txt)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="job folder (created; reused to resume)")
    p.add_argument("--engine", choices=["local", "dask"], default="local")
    p.add_argument("--workers", type=_positive_int, metavar="N", help="local processes (default: the CPU cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--hash", action="store_true", help="key inputs by SHA-256 content instead of mtime")
    p.add_argument("--retry-failed", action="store_true", help="redo inputs that failed in an earlier run")
    p.add_argument("--prune-missing", action="store_true",
                   help="drop the results of earlier inputs whose files were deleted (from folders that still exist)")
    p.add_argument("--no-recursive", action="store_true", help="do not descend into sub-folders")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    a = p.add_argument_group("analysis (as in ferkit analyze)")
    g = a.add_mutually_exclusive_group()
    g.add_argument("--every", type=_positive_int, metavar="N", help="analyse every Nth video frame")
    g.add_argument("--fps", type=_positive_float, metavar="F", help="analyse F video frames per second")
    a.add_argument("--detect-every", type=_positive_int, metavar="K")
    a.add_argument("--detector", help="blazeface (default), mtcnn, blazeface_short")
    a.add_argument("--score-threshold", type=_unit_float, metavar="T")
    a.add_argument("--min-face-size", type=_non_negative_float, metavar="PX")
    a.add_argument("--max-faces", type=_positive_int, metavar="N")
    a.add_argument("--model", help="expression model: shipped name or path to .onnx")
    a.add_argument("--landmarks", action="store_true", help="keep the 468 mesh points")
    a.add_argument("--sentiment-map", choices=["valence", "debate"])
    p.set_defaults(func=cmd_batch)


def batch_options(args: argparse.Namespace) -> dict[str, Any]:
    """Analyzer options given on the command line (others keep their defaults)."""
    names = ("every", "fps", "detect_every", "detector", "score_threshold", "min_face_size", "max_faces", "model",
             "sentiment_map")
    opts = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    if args.landmarks:
        opts["landmarks"] = True
    return opts


def cmd_batch(args: argparse.Namespace) -> int:
    from ferkit.batch import run_batch

    if args.engine == "local" and args.scheduler:
        print("ferkit: warning: --scheduler is only used with --engine dask", file=sys.stderr)
    if args.engine == "dask" and args.workers:
        print("ferkit: warning: --workers is not used with --engine dask (the cluster's workers run the files)",
              file=sys.stderr)
    summary = run_batch(args.inputs, args.output, options=batch_options(args), engine=args.engine,
                        workers=args.workers, scheduler=args.scheduler, use_hash=args.hash,
                        retry_failed=args.retry_failed, recursive=not args.no_recursive, progress=not args.quiet,
                        prune_missing=args.prune_missing)
    if not args.quiet or summary.failed or summary.missing or summary.damaged:
        print(summary.describe(), file=sys.stderr)
    if summary.total and summary.failed == summary.total and not summary.partial:
        return 2  # nothing analysed at all; a partial result (e.g. a truncated video) still has rows
    return 1 if summary.failed or summary.missing or summary.damaged else 0


# ================================================================================================ search / tag


def _add_search(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="find faces in a batch archive by emotion, sentiment, path, face count",
                       description="Faces matching all filters, best first.")
    p.add_argument("archive", metavar="DIR", help="job folder written by ferkit batch")
    p.add_argument("--emotion", help="most probable class, e.g. happy")
    p.add_argument("--sentiment", choices=["negative", "neutral", "positive"])
    p.add_argument("--min-prob", type=_unit_float, metavar="P",
                   help="probability of --emotion (or of the face's top class) at least P")
    p.add_argument("--source", metavar="PATTERN", help="glob pattern (*.jpg, */2023/*) or substring of the path")
    p.add_argument("--faces", type=_positive_int, metavar="N", help="frames with exactly N faces")
    p.add_argument("--min-faces", type=_positive_int, metavar="N")
    p.add_argument("--max-faces", type=_positive_int, metavar="N")
    p.add_argument("--top", type=_positive_int, default=50, metavar="N", help="at most N matches (default 50)")
    p.add_argument("--contact-sheet", metavar="IMAGE", help="write a grid of the matching faces (.jpg / .png)")
    p.add_argument("--format", choices=["table", "csv", "jsonl"], default="table")
    p.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    from ferkit.search import _sheet_extension, contact_sheet, search_archive

    if args.contact_sheet:
        _sheet_extension(args.contact_sheet)  # a wrong name fails before the search
    df = search_archive(args.archive, emotion=args.emotion, sentiment=args.sentiment, min_prob=args.min_prob,
                        source=args.source, faces=args.faces, min_faces=args.min_faces, max_faces=args.max_faces,
                        top=args.top)
    cols = [c for c in ("source", "frame", "time_s", "face_id", "x", "y", "w", "h", "emotion", "score",
                        "sentiment", "n_faces") if c in df.columns]
    try:
        if args.format == "csv":
            df[cols].to_csv(sys.stdout, index=False, float_format="%.4f")
        elif args.format == "jsonl":
            df[cols].to_json(sys.stdout, orient="records", lines=True, double_precision=4)
        else:
            for r in df.itertuples(index=False):
                where = f" t={r.time_s:.2f}s" if r.frame else ""
                print(f"{r.score:.3f}  {r.emotion:<8} {r.sentiment:<8} faces={r.n_faces}  {r.source}{where} "
                      f"face {r.face_id} box {r.x:.0f},{r.y:.0f} {r.w:.0f}x{r.h:.0f}")
        sys.stdout.flush()
    except BrokenPipeError:  # `ferkit search ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    print(f"ferkit: {len(df)} match{'es' if len(df) != 1 else ''}", file=sys.stderr)
    if args.contact_sheet:
        if len(df):
            n = contact_sheet(df, args.contact_sheet)
            if n:
                print(f"ferkit: contact sheet of {n} faces written to {args.contact_sheet}", file=sys.stderr)
            else:
                print(f"ferkit: warning: none of the {len(df)} matched faces could be read back from its file "
                      "(moved or deleted?): no contact sheet written", file=sys.stderr)
                return 1
        else:
            print("ferkit: no match: no contact sheet written", file=sys.stderr)
    return 0


def _add_tag(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tag", help="write a JSON sidecar per analysed photo (faces + expression tags)")
    p.add_argument("archive", metavar="DIR", help="job folder written by ferkit batch")
    p.add_argument("--sidecar", action="store_true", required=True, help="write <photo>.ferkit.json sidecars")
    p.add_argument("--out-dir", metavar="DIR", help="write sidecars here (mirroring paths) instead of next to photos")
    p.add_argument("--suffix", default=".ferkit.json", help="sidecar suffix (default .ferkit.json)")
    p.add_argument("--min-prob", type=_unit_float, default=0.5, metavar="P", help="tag faces with probability >= P")
    p.set_defaults(func=cmd_tag)


def cmd_tag(args: argparse.Namespace) -> int:
    from ferkit.search import write_sidecars

    n, problems = write_sidecars(args.archive, out_dir=args.out_dir, suffix=args.suffix, min_prob=args.min_prob)
    for msg in problems[:10]:
        print(f"ferkit: warning: cannot write {msg}", file=sys.stderr)
    print(f"ferkit: {n} sidecar{'s' if n != 1 else ''} written"
          + (f", {len(problems)} could not be written" if problems else ""), file=sys.stderr)
    return 1 if problems else 0


# ================================================================================================ serve


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="HTTP service and web page (needs the [serve] extra)",
                       description="POST /v1/analyze, GET /healthz, the web page at /, OpenAPI docs at /docs.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000; 0: any free port)")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (default: $FERKIT_TOKEN)")
    p.add_argument("--workers", type=_positive_int, default=1, metavar="N", help="analyzers serving in parallel")
    p.add_argument("--max-upload-mb", type=_positive_float, default=25.0)
    p.add_argument("--max-video-s", type=_positive_float, default=30.0)
    p.add_argument("--max-megapixels", type=_positive_float, default=30.0)
    p.add_argument("--video-fps", type=_positive_float, default=5.0, help="video frames analysed per second")
    p.add_argument("--model", help="expression model: shipped name or path to .onnx")
    p.set_defaults(func=cmd_serve)


_port = _int_type(0, 65535, "a port number 0-65535")


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ferkit.serve import ServeSettings, create_app
    except ImportError as exc:
        from ferkit.errors import FerkitError

        raise FerkitError(f"ferkit serve needs the [serve] extra ({exc.name} missing): "
                          "pip install 'ferkit[serve]'") from None
    token = args.token or os.environ.get("FERKIT_TOKEN") or None
    settings = ServeSettings(token=token, max_upload_bytes=int(args.max_upload_mb * 1e6),
                             max_video_s=args.max_video_s, max_pixels=int(args.max_megapixels * 1e6),
                             video_fps=args.video_fps, analyzers=args.workers,
                             options={"model": args.model} if args.model else {})
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token:
        print("ferkit: warning: serving on a non-loopback address without --token", file=sys.stderr)
    import socket

    try:  # a taken port or an address not on this machine: a clear error before the server starts
        with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((args.host, args.port))
    except OSError as exc:
        from ferkit.errors import FerkitError

        raise FerkitError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=args.host, port=args.port, log_level="info"))
    # (not uvicorn.run, which swallows the interrupt): after a graceful shutdown, Server.run raises the signal
    # that stopped it again, so Ctrl-C and SIGTERM end `ferkit serve` with 130 / 143 as they end other commands.
    try:
        server.run()
    except SystemExit:  # uvicorn exits (3) when it cannot start, e.g. the port was taken after the check above
        if server.started:
            raise
        from ferkit.errors import FerkitError

        raise FerkitError(f"the server on {args.host}:{args.port} did not start (see the log above)") from None
    return 0
