"""The job directory of a batch run (the *archive*): layout, status log, part files, reading back.

Layout of ``results/``::

    job.json          analysis options and classes of the latest run
    status.jsonl      append-only log: one JSON record per finished input (the latest record of a source wins)
    status.csv        the status table (one row per input, compacted from the log at the end of each run)
    parts/*.parquet   rows of one input each (``<source digest>-<key digest>.parquet``), written atomically
    .lock             held while a run is active (a second run on the same folder is refused)

An input's *key* is its size and modification time (or, with ``hash=True``, its size and SHA-256) plus the
digest of the analysis options. A record whose key matches the file on disk is finished: the file is skipped.
A part is written (temporary name, fsync, rename) *before* its status record is appended, so a run killed at
any moment leaves at worst an unreferenced part, which the next run deletes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ferkit.errors import FerkitError, OutputError
from ferkit.io._files import file_sha256

__all__ = ["STATUS_COLUMNS", "Archive", "StatusRecord", "file_key", "iter_archive_rows", "read_archive"]

STATUS_COLUMNS = ("source", "kind", "status", "reason", "frames", "faces", "rows", "seconds", "size", "mtime_ns",
                  "sha256", "key", "part", "worker", "finished_at", "frames_lost")


@dataclass
class StatusRecord:
    """One input's outcome (a row of the status table)."""

    source: str
    kind: str = "image"
    status: str = "ok"  # ok | no_face | partial | failed
    reason: str | None = None
    frames: int = 0
    faces: int = 0
    rows: int = 0
    seconds: float = 0.0
    size: int | None = None
    mtime_ns: int | None = None
    sha256: str | None = None
    key: str | None = None
    part: str | None = None
    worker: str = ""
    finished_at: float = 0.0
    frames_lost: int = 0  # frames of a damaged video that could not be decoded (skipped; the rest analysed)

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "no_face")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StatusRecord:
        return cls(**{k: d.get(k) for k in STATUS_COLUMNS if k in d})



def file_key(path: str, digest: str, use_hash: bool = False) -> tuple[str, int, int, str | None]:
    """(key, size, mtime_ns, sha256) of a file for the analysis options ``digest``; raises ``OSError``."""
    st = os.stat(path)
    sha = file_sha256(path) if use_hash else None
    ident = f"sha256={sha}" if sha else f"mtime_ns={st.st_mtime_ns}"
    return f"size={st.st_size};{ident};options={digest}", st.st_size, st.st_mtime_ns, sha


def part_name(source: str, key: str) -> str:
    """File name of the part holding the rows of ``source`` analysed under ``key``."""
    a = hashlib.sha1(source.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    b = hashlib.sha1(key.encode()).hexdigest()[:10]
    return f"{a}-{b}.parquet"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _tmp_name(path: Path) -> Path:
    """A temporary name beside ``path`` that is never longer than a short one (long names stay writable)."""
    digest = hashlib.sha1(os.fsencode(path.name)).hexdigest()[:16]
    return path.with_name(f".tmp-{digest}-{os.getpid()}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename."""
    tmp = _tmp_name(path)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class Archive:
    """A batch job directory (created if missing). Use as a context manager to hold its lock while writing; a
    folder it created goes again when the run is refused (a :class:`~ferkit.errors.FerkitError`) before any part
    was written."""

    def __init__(self, root: str | os.PathLike[str], create: bool = True) -> None:
        self.root = Path(root)
        self._made = create and not os.path.lexists(self.root)
        if create:
            try:
                (self.root / "parts").mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot create the job folder {self.root}: {exc.strerror or exc}") from None
        elif not (self.root / "status.jsonl").is_file():
            raise OutputError(f"{self.root} is not a batch results folder (no status.jsonl); "
                              "run `ferkit batch ... -o DIR` first")
        self.parts = self.root / "parts"
        self.log_path = self.root / "status.jsonl"
        self._held: contextlib.ExitStack | None = None
        self._log_fh: Any = None

    # -- locking ----------------------------------------------------------------------------------------------
    def __enter__(self) -> Archive:
        from ferkit.io._files import FolderLock

        if self._held is not None:
            raise RuntimeError(f"the archive {self.root} is already held by this process")
        with contextlib.ExitStack() as stack:  # (nothing held if taking the lock fails)
            stack.enter_context(FolderLock(self.root, f"another batch run is using {self.root}"))
            stack.callback(self._close_log)  # the log closes first, then the lock is released
            self._held = stack.pop_all()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None
        if (self._made and exc_type is not None and issubclass(exc_type, FerkitError)
                and not (self.parts.is_dir() and any(self.parts.iterdir()))):
            shutil.rmtree(self.root, ignore_errors=True)

    def _close_log(self) -> None:
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    # -- status log -------------------------------------------------------------------------------------------
    def records(self) -> dict[str, StatusRecord]:
        """Latest record of every source in the log (a torn last line, from a kill, is ignored)."""
        out: dict[str, StatusRecord] = {}
        if not self.log_path.is_file():
            return out
        with open(self.log_path, encoding="utf-8", errors="surrogateescape") as fh:
            for line in fh:
                try:
                    d = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(d, dict) and "source" in d:
                    out[d["source"]] = StatusRecord.from_dict(d)
        return out

    def append(self, rec: StatusRecord) -> None:
        """Append a record durably (flush + fsync): once here, the input counts as finished."""
        if self._log_fh is None:
            self._log_fh = open(self.log_path, "ab")  # noqa: SIM115 - closed in __exit__
            if self._log_fh.tell() > 0:
                with open(self.log_path, "rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":  # a torn line from a killed run: start on a fresh line
                        self._log_fh.write(b"\n")
        line = json.dumps(asdict(rec), ensure_ascii=False) + "\n"
        self._log_fh.write(line.encode("utf-8", "surrogateescape"))
        self._log_fh.flush()
        os.fsync(self._log_fh.fileno())

    def write_part(self, rec: StatusRecord, rows: Any) -> None:
        """Write the rows of ``rec.source`` atomically to its part file (sets ``rec.part`` and ``rec.rows``)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        assert rec.key is not None
        name = part_name(rec.source, rec.key)
        path = self.parts / name
        tmp = _tmp_name(path)
        from ferkit.results import BASE_COLUMNS, arrow_schema

        classes = [c for c in rows.columns if c not in BASE_COLUMNS and c != "landmarks"]
        schema = arrow_schema(classes, "landmarks" in rows.columns)  # the types of `ferkit analyze -o x.parquet`
        table = pa.Table.from_pandas(rows[schema.names], schema=schema, preserve_index=False)
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.parts)
        rec.part, rec.rows = name, int(table.num_rows)

    def collect_garbage(self, records: dict[str, StatusRecord]) -> int:
        """Delete temporary files and parts no record refers to (left by a kill or superseded); returns count."""
        live = {r.part for r in records.values() if r.part}
        n = 0
        for p in self.parts.iterdir():
            if p.name not in live:
                with contextlib.suppress(OSError):
                    p.unlink()
                    n += 1
        for p in [*self.root.glob(".tmp-*"), *self.root.glob(".*.tmp-*")]:  # (older runs: .NAME.tmp-PID)
            with contextlib.suppress(OSError):
                p.unlink()
        return n

    def write_status_table(self, records: dict[str, StatusRecord]) -> None:
        """Compact the log (one line per source) and write ``status.csv``, both atomically."""
        import csv
        import io

        recs = sorted(records.values(), key=lambda r: r.source)
        log = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in recs)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        atomic_write_bytes(self.log_path, log.encode("utf-8", "surrogateescape"))
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(STATUS_COLUMNS)
        for r in recs:
            d = asdict(r)
            w.writerow(["" if d[c] is None else (f"{d[c]:.3f}" if c == "seconds" else d[c]) for c in STATUS_COLUMNS])
        atomic_write_bytes(self.root / "status.csv", buf.getvalue().encode("utf-8", "surrogateescape"))

    def write_job(self, info: dict[str, Any]) -> None:
        atomic_write_bytes(self.root / "job.json", json.dumps(info, indent=1, default=str).encode())

    def status_frame(self) -> Any:
        """The status table as a ``pandas.DataFrame`` (latest record per source)."""
        import pandas as pd

        recs = sorted(self.records().values(), key=lambda r: r.source)
        return pd.DataFrame([asdict(r) for r in recs], columns=list(STATUS_COLUMNS))


def iter_archive_rows(root: str | os.PathLike[str], columns: list[str] | None = None) -> Iterator[tuple[StatusRecord,
                                                                                                         Any]]:
    """(status record, rows DataFrame) per input with rows, part by part (memory: one part at a time)."""
    import pyarrow.parquet as pq

    arch = Archive(root, create=False)
    for rec in sorted(arch.records().values(), key=lambda r: r.source):
        if rec.part and rec.rows:
            path = arch.parts / rec.part
            if path.is_file():
                yield rec, pq.read_table(path, columns=columns).to_pandas()


def read_archive(root: str | os.PathLike[str], columns: list[str] | None = None) -> Any:
    """All rows of a batch archive as one ``pandas.DataFrame`` (sorted by source, then frame and face)."""
    import pandas as pd

    frames = [df for _, df in iter_archive_rows(root, columns)]
    if not frames:
        return pd.DataFrame(columns=columns or [])
    return pd.concat(frames, ignore_index=True)
