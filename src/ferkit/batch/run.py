"""Running a batch job: list inputs, skip finished ones, analyse the rest on an engine, record each result.

Engines: ``local`` (a process pool, one analyzer per process, one intra-op thread each) and ``dask`` (a Dask
distributed cluster; ``pip install 'ferkit[dask]'``). Both analyse one file per task with the same code
(:func:`ferkit.batch.worker.analyze_file`), so their rows are identical; the driver (this process) is the only
writer of the job folder, so workers need read access to the inputs but none to the output.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ferkit.batch.archive import Archive, StatusRecord, file_key
from ferkit.batch.worker import FileResult, analyze_file, init_worker, options_digest
from ferkit.errors import InputError

__all__ = ["BatchSummary", "run_batch"]

#: A file whose worker process died this many times is recorded as failed.
MAX_ATTEMPTS = 2


@dataclass
class BatchSummary:
    """Outcome of :func:`run_batch` over the inputs of this run (finished earlier ones included)."""

    total: int = 0
    analysed: int = 0  # analysed in this run
    skipped: int = 0  # finished in an earlier run, not redone
    ok: int = 0
    no_face: int = 0
    failed: int = 0  # failed or partial
    partial: int = 0  # of ``failed``: analysed in part (e.g. a truncated video), rows kept
    rows: int = 0
    pruned: int = 0  # results of earlier inputs dropped because their files are gone (``prune_missing``)
    missing: int = 0  # named inputs (directly or in a list) not found now whose earlier results are kept
    damaged: int = 0  # of ``ok`` / ``no_face``: videos with damaged frames that could not be decoded (skipped)
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Files analysed per second in this run."""
        return self.analysed / self.seconds if self.seconds > 0 else 0.0

    def describe(self, max_reasons: int = 5) -> str:
        """A few readable lines: counts, then the failures grouped by reason."""
        part = f" ({self.partial} in part)" if self.partial else ""
        lines = [f"{self.total} input{'s' if self.total != 1 else ''}: {self.ok} with faces, {self.no_face} without, "
                 f"{self.failed} failed{part}; {self.analysed} analysed now ({self.rate:.2f} files/s), "
                 f"{self.skipped} already done; {self.rows} rows"
                 + (f"; dropped the results of {self.pruned} deleted input{'s' if self.pruned != 1 else ''}"
                    if self.pruned else "")]
        if self.damaged:
            lines.append(f"  {self.damaged} video{'s' if self.damaged != 1 else ''} analysed with damaged frames "
                         "skipped (see status.csv: frames_lost)")
        if self.missing:
            lines.append(f"  {self.missing} input{'s' if self.missing != 1 else ''} not found now: "
                         "their earlier results are kept (--prune-missing drops those of deleted files)")
        by_reason = Counter(_reason_class(r) for _, r in self.failures)
        for reason, n in by_reason.most_common(max_reasons):
            example = next(s for s, r in self.failures if _reason_class(r) == reason)
            lines.append(f"  {n} failed: {reason} (e.g. {example})")
        if len(by_reason) > max_reasons:
            lines.append(f"  ... see status.csv for the other {len(by_reason) - max_reasons} reasons")
        return "\n".join(lines)


def _reason_class(reason: str) -> str:
    """A reason without its file name, to group failures."""
    head, sep, tail = reason.partition(": ")
    return tail if sep and (os.sep in head or "." in head) else reason


# ================================================================================================ engines


class _Engine(Protocol):
    slots: int

    def submit(self, path: str, options: dict[str, Any]) -> Any: ...

    def wait_any(self, handles: Iterable[Any]) -> set[Any]: ...

    def result(self, handle: Any) -> FileResult: ...

    def close(self) -> None: ...


class _LocalEngine:
    """A process pool (spawned processes: no state inherited from the driver)."""

    def __init__(self, workers: int) -> None:
        self.slots = workers
        self._aborted = False
        self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        import multiprocessing as mp

        return cf.ProcessPoolExecutor(self.slots, mp_context=mp.get_context("spawn"), initializer=init_worker)

    def submit(self, path: str, options: dict[str, Any]) -> Any:
        try:
            return self._pool.submit(analyze_file, path, options)
        except cf.process.BrokenProcessPool:
            self.restart()
            return self._pool.submit(analyze_file, path, options)

    def wait_any(self, handles: Iterable[Any]) -> set[Any]:
        return cf.wait(list(handles), return_when=cf.FIRST_COMPLETED)[0]

    def result(self, handle: Any) -> FileResult:
        return handle.result()

    def restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self) -> None:
        if not self._aborted:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        """Stop now (an interrupt): cancel what is queued and end the workers midway through their files."""
        self._aborted = True
        terminate = getattr(self._pool, "terminate_workers", None)  # Python 3.14+
        if terminate is not None:
            with contextlib.suppress(Exception):
                terminate()
            return
        procs = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.terminate()
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.join(5)


class _DaskEngine:
    """Tasks on a Dask distributed cluster (``scheduler`` address, or an existing ``client``)."""

    def __init__(self, scheduler: str | None, client: Any = None) -> None:
        try:
            from dask.distributed import Client
        except ImportError:
            raise InputError("the dask engine needs dask.distributed: pip install 'ferkit[dask]'") from None
        if client is None and not scheduler:
            raise InputError("--engine dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
        self._own = client is None
        try:
            self.client = client if client is not None else Client(scheduler, timeout="20s")
        except (OSError, ValueError, TypeError) as exc:  # unreachable, or not an address ("missing port number")
            raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        self.slots = max(1, sum(self.client.nthreads().values()))

    def submit(self, path: str, options: dict[str, Any]) -> Any:
        return self.client.submit(analyze_file, path, options, pure=False, retries=1)

    def wait_any(self, handles: Iterable[Any]) -> set[Any]:
        from dask.distributed import wait

        return set(wait(list(handles), return_when="FIRST_COMPLETED").done)

    def result(self, handle: Any) -> FileResult:
        return handle.result()

    def close(self) -> None:
        if self._own:
            self.client.close()


# ================================================================================================ the job


@dataclass
class _Todo:
    source: str
    key: str
    size: int
    mtime_ns: int
    sha256: str | None
    attempts: int = 0


def run_batch(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
              options: dict[str, Any] | None = None, engine: str = "local", workers: int | None = None,
              scheduler: str | None = None, client: Any = None, use_hash: bool = False, retry_failed: bool = False,
              recursive: bool = True, progress: bool = False, prune_missing: bool = False,
              on_record: Callable[[StatusRecord], None] | None = None) -> BatchSummary:
    """Analyse ``inputs`` (files, folders, list files) into the job folder ``out``; resumable and idempotent.

    Inputs whose key (size, mtime or SHA-256 with ``use_hash``, analysis options) matches a finished record are
    skipped; ``failed`` / ``partial`` ones too unless ``retry_failed``. Sources are recorded by their real path
    (symbolic links resolved), so a folder reached through a link is the same folder. ``prune_missing`` drops the
    records and rows of earlier inputs whose files were deleted from folders that still exist (inputs of other
    runs that still exist stay; so do the results of a folder that is missing as a whole, e.g. an unmounted drive).
    Returns the :class:`BatchSummary`.
    """
    from ferkit.io import expand_sources
    from ferkit.io.sources import EMPTY_PATH, NOT_FOUND

    options = dict(options or {})
    _check_detector(options.get("detector"))  # an unknown detector or model stops here, not as a failure of
    model_id = _model_identity(str(options.get("model") or "default"))  # every input
    digest = options_digest({**options, "model_sha256": model_id})  # new weights in the same file redo the inputs
    t0 = time.perf_counter()
    summary = BatchSummary()
    sources = expand_sources(list(inputs), recursive=recursive, exclude=[out])  # (its own results folder)
    if all(s.error is not None for s in sources) and not Path(out).exists():
        from ferkit.io.sources import describe_problems

        raise InputError("nothing to analyse (no results folder made): "
                         + ("; ".join(describe_problems(sources)) or "no inputs (an empty list file?)"))
    with Archive(out) as arch:  # (a folder it made goes again if the run is refused, e.g. at its engine)
        records = arch.records()
        todo: list[_Todo] = []
        seen: list[str] = []
        missing: list[str] = []
        for src in sources:
            name = src.name if src.error == EMPTY_PATH else os.path.realpath(src.path)
            seen.append(name)
            if src.error is not None:
                old = records.get(name)
                if src.error == NOT_FOUND and old is not None and old.status != "failed":
                    missing.append(name)  # e.g. an unmounted drive: the earlier results stay
                    continue
                rec = StatusRecord(name, src.kind or "image", "failed", src.describe(),
                                   finished_at=time.time())
                old = records.get(name)
                if old is None or (old.status, old.reason) != (rec.status, rec.reason):
                    _replace(arch, records, rec)
                continue
            try:
                key, size, mtime_ns, sha = file_key(name, digest, use_hash)
            except OSError as exc:
                _replace(arch, records, StatusRecord(name, src.kind or "image", "failed",
                                                     f"{name}: cannot be read ({exc.strerror or exc})",
                                                     finished_at=time.time()))
                continue
            old = records.get(name)
            if old is not None and old.key == key and (old.ok or not retry_failed):
                summary.skipped += 1
                continue
            todo.append(_Todo(name, key, size, mtime_ns, sha))
        summary.total = len(dict.fromkeys(seen))
        if prune_missing:
            listed = set(seen)
            # Only files deleted from a folder that is still there: an unmounted drive or a missing folder
            # (everything under it looks deleted) keeps its results.
            gone = [s for s in records
                    if (s not in listed or s in missing) and not os.path.lexists(s)
                    and os.path.isdir(os.path.dirname(s))]
            for s in gone:
                del records[s]
            summary.pruned = len(gone)
        summary.missing = sum(1 for s in missing if s in records)
        arch.collect_garbage(records)  # parts no record refers to: left by a kill, superseded or pruned
        job = {"options": options, "options_digest": digest, "engine": engine, "updated": time.time()}
        try:
            if todo:  # job.json is written once the engine is up: a run refused there leaves it as it was
                _analyse(arch, records, todo, options, engine, workers, scheduler, client, progress, on_record,
                         on_ready=lambda: arch.write_job(job))
            else:
                arch.write_job(job)
        finally:  # an interrupted run leaves a status table of what it finished, too
            arch.write_status_table(records)
        summary.analysed = len(todo)
    for name in dict.fromkeys(seen):
        rec = records.get(name)
        if rec is None:
            continue
        summary.rows += rec.rows
        summary.damaged += bool(rec.ok and rec.frames_lost)
        if rec.status == "ok":
            summary.ok += 1
        elif rec.status == "no_face":
            summary.no_face += 1
        else:
            summary.failed += 1
            summary.partial += rec.status == "partial"
            summary.failures.append((name, rec.reason or rec.status))
    summary.seconds = time.perf_counter() - t0
    return summary


def _check_detector(detector: str | None) -> None:
    from ferkit.face.detect import list_detectors

    if detector is not None and detector not in list_detectors():
        raise InputError(f"unknown face detector {detector!r}; known detectors: {', '.join(list_detectors())}")


def _model_identity(model: str) -> str:
    """sha256 of the expression model's ONNX file (from its card when recorded there); :class:`ModelError` when
    there is no such model."""
    from ferkit.inference.model import resolve_model

    onnx_path, card_path = resolve_model(model)
    try:
        card = json.loads(card_path.read_text())
        if card.get("sha256") and card.get("size_bytes") == onnx_path.stat().st_size:
            return str(card["sha256"])
    except (OSError, ValueError):
        pass
    from ferkit.io._files import file_sha256

    return file_sha256(onnx_path)


def _replace(arch: Archive, records: dict[str, StatusRecord], rec: StatusRecord) -> None:
    """Record ``rec`` as the latest of its source and delete the part it supersedes.

    The in-memory table is updated first: an interrupt that lands in the (slow, fsync'd) append must not leave a
    logged record out of the status table that the interrupted run compacts the log into."""
    old = records.get(rec.source)
    records[rec.source] = rec
    arch.append(rec)
    if old is not None and old.part and old.part != rec.part:
        try:
            (arch.parts / old.part).unlink()
        except OSError:
            pass


def _analyse(arch: Archive, records: dict[str, StatusRecord], todo: list[_Todo], options: dict[str, Any],
             engine_name: str, workers: int | None, scheduler: str | None, client: Any, progress: bool,
             on_record: Callable[[StatusRecord], None] | None, on_ready: Callable[[], None] = lambda: None) -> None:
    if engine_name == "local":
        n = workers or max(1, min(os.cpu_count() or 1, len(todo)))
        eng: _Engine = _LocalEngine(max(1, min(n, len(todo))))
    elif engine_name == "dask":
        eng = _DaskEngine(scheduler, client)
    else:
        raise InputError(f"unknown engine {engine_name!r}; use local or dask")
    try:
        on_ready()
    except BaseException:
        eng.close()
        raise
    bar = None
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="file", file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
    window = 2 * eng.slots
    queue = list(reversed(todo))
    inflight: dict[Any, _Todo] = {}
    failed = 0
    try:
        while queue or inflight:
            while queue and len(inflight) < window:
                t = queue.pop()
                inflight[eng.submit(t.source, options)] = t
            for h in eng.wait_any(inflight):
                if h not in inflight:
                    continue  # requeued when the pool broke (another future of this round)
                t = inflight.pop(h)
                try:
                    res = eng.result(h)
                except (cf.process.BrokenProcessPool, cf.CancelledError) as exc:
                    t.attempts += 1
                    if t.attempts < MAX_ATTEMPTS:
                        queue.append(t)
                        if isinstance(eng, _LocalEngine) and isinstance(exc, cf.process.BrokenProcessPool):
                            _requeue_all(eng, inflight, queue)
                        continue
                    res = FileResult.failed(t.source, "the worker process died analysing it")
                except Exception as exc:  # noqa: BLE001 - e.g. a Dask KilledWorker: record, go on
                    res = FileResult.failed(t.source, f"worker error: {type(exc).__name__}: {exc}")
                rec = _record(arch, t, res)
                _replace(arch, records, rec)
                if on_record is not None:
                    on_record(rec)
                if bar is not None:
                    failed += not rec.ok
                    bar.set_postfix_str(f"failed {failed}", refresh=False)
                    bar.update(1)
    except BaseException:
        abort = getattr(eng, "abort", None)  # an interrupt: finished files are recorded; stop the rest now
        if abort is not None:
            abort()
        raise
    finally:
        if bar is not None:
            bar.close()
        eng.close()


def _requeue_all(eng: _LocalEngine, inflight: dict[Any, _Todo], queue: list[_Todo]) -> None:
    """The pool broke: restart it and put every file that was in flight back in the queue."""
    for t in inflight.values():
        t.attempts += 1
        queue.append(t)
    inflight.clear()
    eng.restart()


def _record(arch: Archive, t: _Todo, res: FileResult) -> StatusRecord:
    st = res.status
    reason = st.reason
    if reason is None and st.frames_lost:
        from ferkit.results import damaged_frames

        reason = damaged_frames(st.frames_lost)
    rec = StatusRecord(t.source, st.kind, st.status, reason, st.frames, st.faces, 0, round(res.seconds, 4),
                       t.size, t.mtime_ns, t.sha256, t.key, None, res.worker, time.time(),
                       frames_lost=st.frames_lost)
    if res.rows is not None and len(res.rows):
        try:
            arch.write_part(rec, res.rows)
        except OSError as exc:
            from ferkit.errors import OutputError

            raise OutputError(f"cannot write to {arch.parts}: {exc.strerror or exc}") from None
    return rec
