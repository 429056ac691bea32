"""Write result rows to CSV / TSV, JSON Lines, JSON or Parquet, atomically and in a streaming way.

The format follows the output extension: ``.csv``, ``.tsv``, ``.jsonl`` / ``.ndjson``, ``.json``
(one array), ``.parquet`` / ``.pq`` (or pass ``format=``).

* Rows are mappings (``dict``), a list of them, or a pandas ``DataFrame``.
* Streaming: :func:`open_sink` returns a :class:`RowSink`; call ``.write(rows)`` per batch (a frame,
  a file, a chunk of a video) so a one-hour video never holds all rows in memory. Parquet rows are
  buffered into row groups of ``row_group_size`` rows (``pyarrow.parquet.ParquetWriter``).
* Atomic: rows go to a hidden temporary file in the destination folder (``.name.XXXX.tmp``), which
  replaces the destination only when the sink is closed without error. An existing file at the
  destination is never left half-written. A symbolic link is followed (the file it points to is replaced);
  a destination that is not a regular file (a FIFO, ``/dev/null``, ``/dev/stdout``) is written in place.
* On an exception inside the ``with`` block (or :meth:`RowSink.abort`), the rows written so far
  are kept as a valid, readable ``<path>.partial`` file (``keep_partial=True``, the default) and the
  destination is left untouched; with no rows written, nothing is left behind.
* Text formats round floats to ``decimals`` places (default 5: probabilities to 1e-5, times to
  10 us); NaN is written as an empty CSV cell / JSON ``null``. Parquet keeps full precision.
* ``open_sink("-")`` or ``open_sink(sys.stdout)`` streams JSON Lines (or CSV) to a text stream,
  flushed after each ``write`` (for ``--format jsonl`` pipes); that is not atomic, of course.
* Errors opening the destination (folder that cannot be created, no permission, a folder at the
  path, unknown extension) raise :class:`~ferkit.errors.OutputError` at ``open_sink`` time, before
  any work is done.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import json
import math
import os
import secrets
import sys
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from pathlib import Path, PurePath
from typing import IO, Any, Literal, Self

import numpy as np

from ferkit.errors import OutputError

SinkFormat = Literal["csv", "tsv", "jsonl", "json", "parquet"]

#: Output extension -> format.
FORMAT_BY_EXTENSION: dict[str, SinkFormat] = {
    ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
    ".parquet": "parquet", ".pq": "parquet",
}
DEFAULT_DECIMALS = 5
DEFAULT_ROW_GROUP_SIZE = 50_000

Rows = Iterable[Mapping[str, Any]] | Mapping[str, Any] | Any  # Any: a pandas DataFrame


def sink_format(path: str | os.PathLike[str], format: str | None = None) -> SinkFormat:
    """The output format for ``path`` (or the explicit ``format``); :class:`OutputError` if unknown."""
    if format is not None:
        f = format.lower().lstrip(".")
        f = "jsonl" if f == "ndjson" else "parquet" if f == "pq" else f
        if f not in ("csv", "tsv", "jsonl", "json", "parquet"):
            raise OutputError(f"unknown output format {format!r}; use csv, tsv, jsonl, json or parquet")
        return f  # type: ignore[return-value]
    ext = PurePath(os.fspath(path)).suffix.lower()
    try:
        return FORMAT_BY_EXTENSION[ext]
    except KeyError:
        raise OutputError(f"cannot tell the output format of {os.fspath(path)!r} from its extension; "
                          "use .csv, .tsv, .jsonl, .ndjson, .json or .parquet "
                          "(or give the format: --format, format=)") from None


def write_rows(rows: Rows, path: str | os.PathLike[str], *, format: str | None = None,
               decimals: int | None = DEFAULT_DECIMALS, columns: Sequence[str] | None = None) -> Path:
    """Write all ``rows`` to ``path`` at once (atomically); returns the path written."""
    with open_sink(path, format=format, decimals=decimals, columns=columns) as sink:
        sink.write(rows)
    return Path(path)


def open_sink(target: str | os.PathLike[str] | IO[str], *, format: str | None = None,
              decimals: int | None = DEFAULT_DECIMALS, columns: Sequence[str] | None = None,
              keep_partial: bool = True, make_dirs: bool = True,
              row_group_size: int = DEFAULT_ROW_GROUP_SIZE, schema: Any = None) -> RowSink:
    """Open a streaming :class:`RowSink` (use it as a context manager).

    Args:
        target: output path, ``"-"`` for standard output, or an open text stream.
        format: force a format instead of using the extension (``"-"`` / streams default to jsonl).
        decimals: round floats in text formats to this many decimals (``None``: full precision).
        columns: column order (CSV header); by default the keys of the first rows, in order.
        keep_partial: on failure keep the rows written so far as ``<path>.partial``.
        make_dirs: create missing parent folders.
        row_group_size: Parquet rows per row group.
        schema: Parquet only: the ``pyarrow.Schema`` of the file (rows are cast to it). Without it, the types
            come from the first rows, and a file with no rows has untyped (null) columns.
    """
    return RowSink(target, format=format, decimals=decimals, columns=columns, keep_partial=keep_partial,
                   make_dirs=make_dirs, row_group_size=row_group_size, schema=schema)


class RowSink:
    """A streaming, atomic writer of result rows. See the module docstring for the rules."""

    def __init__(self, target: str | os.PathLike[str] | IO[str], *, format: str | None = None,
                 decimals: int | None = DEFAULT_DECIMALS, columns: Sequence[str] | None = None,
                 keep_partial: bool = True, make_dirs: bool = True,
                 row_group_size: int = DEFAULT_ROW_GROUP_SIZE, schema: Any = None) -> None:
        self.decimals = decimals
        self._schema = schema
        self.keep_partial = keep_partial
        self.row_group_size = max(1, int(row_group_size))
        self.rows_written = 0
        self.closed = False
        self.path: Path | None = None
        self.partial_path: Path | None = None
        self._columns: list[str] | None = list(columns) if columns is not None else None
        self._tmp: Path | None = None
        self._fh: IO[Any] | None = None
        self._csv: Any = None
        self._pq_writer: Any = None
        self._pq_schema: Any = None
        self._pq_buffer: list[dict[str, Any]] = []
        self._json_first = True
        self._own_stream = False

        if hasattr(target, "write") or (isinstance(target, str) and target == "-"):
            stream: IO[str] = sys.stdout if isinstance(target, str) else target  # type: ignore[assignment]
            self.format: SinkFormat = sink_format("-", format or "jsonl")
            if self.format == "parquet":
                raise OutputError("Parquet cannot be written to a text stream; give a .parquet path")
            self._fh = stream
            self._name = getattr(stream, "name", "<stream>")
        else:
            path = Path(os.fspath(target))  # type: ignore[arg-type]
            if path.is_dir():
                raise OutputError(f"cannot write {path}: it is a folder (give a file name such as results.csv)")
            self.format = sink_format(path, format)
            self.path = path
            self._name = str(path)
            if (path.exists() and not path.is_file()) or _is_stream_path(path):  # a FIFO, /dev/null, /dev/stdout
                self._open_in_place(path)
            else:
                if path.is_symlink():  # replace the file the link points to, not the link
                    self.path = path = Path(os.path.realpath(path))
                self._open_tmp(path, make_dirs)
        if self.format in ("csv", "tsv"):
            self._csv = csv.writer(self._fh, delimiter="\t" if self.format == "tsv" else ",", lineterminator="\n")
            if self._columns is not None:
                self._write_text(lambda: self._csv.writerow(self._columns))
        elif self.format == "json":
            self._write_text(lambda: self._fh.write("["))

    # -- opening / closing -------------------------------------------------------------------
    def _open_tmp(self, path: Path, make_dirs: bool) -> None:
        if path.is_dir():
            raise OutputError(f"cannot write {path}: it is a folder")
        parent = path.parent
        if not parent.is_dir():
            if parent.exists():
                raise OutputError(f"cannot write {path}: {parent} is not a folder")
            if not make_dirs:
                raise OutputError(f"cannot write {path}: folder {parent} does not exist")
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot create folder {parent} for {path.name}: {_reason(exc)}") from None
        tmp = parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            if self.format == "parquet":
                self._fh = open(tmp, "xb")  # noqa: SIM115 - closed in close()/abort()
            else:
                self._fh = open(tmp, "x", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
        self._tmp = tmp
        self._own_stream = True

    def _open_in_place(self, path: Path) -> None:
        try:
            # appending: /dev/stdout redirected to a file (`>> log.csv`) must not truncate that file
            self._fh = open(path, "ab" if self.format == "parquet" else "a",  # noqa: SIM115 - closed in close()
                            **({} if self.format == "parquet" else {"encoding": "utf-8", "newline": ""}))
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
        self._own_stream = True  # closed by us; no temporary file, so nothing to rename or keep as .partial

    def close(self) -> None:
        """Finish the file and move it into place (atomic). Safe to call twice."""
        if self.closed:
            return
        try:
            if self.format == "parquet":
                self._flush_parquet(final=True)
            elif self.format == "json":
                self._write_text(lambda: self._fh.write("]\n" if self._json_first else "\n]\n"))
            elif self.format in ("csv", "tsv") and self._columns is None and self.rows_written == 0:
                pass  # nothing known about the columns: an empty file
            if self._own_stream:
                if not self._fh.closed:
                    self._fh.flush()
                    if self._tmp is not None:
                        os.fsync(self._fh.fileno())
                    self._fh.close()
                if self._tmp is not None:  # (None: written in place)
                    assert self.path is not None
                    os.replace(self._tmp, self.path)
                    self._tmp = None
            else:
                self._fh.flush()
        except (OutputError, BrokenPipeError):
            self.abort()
            raise
        except OSError as exc:
            self.abort()
            raise OutputError(f"cannot write {self._name}: {_reason(exc)}") from None
        self.closed = True

    def abort(self) -> None:
        """Give up: keep the rows written so far as ``<path>.partial`` (if any and keep_partial), else
        delete the temporary file. The destination path is not touched."""
        if self.closed:
            return
        self.closed = True
        if not self._own_stream:
            return
        # best effort on the way out: make the partial file valid (Parquet footer, JSON "]")
        if self.format == "parquet":
            if self.keep_partial and self._pq_buffer:
                with contextlib.suppress(Exception):
                    self._flush_parquet(final=False)
            if self._pq_writer is not None:
                with contextlib.suppress(Exception):
                    self._pq_writer.close()
        elif self.format == "json" and not self._json_first:
            with contextlib.suppress(Exception):
                self._fh.write("\n]\n")
        with contextlib.suppress(Exception):
            self._fh.close()
        tmp = self._tmp
        self._tmp = None
        if tmp is None:
            return
        if self.format == "parquet" and self._pq_writer is None:
            self.rows_written = 0  # nothing reached the file (no Parquet footer): no partial file to keep
        try:
            if self.keep_partial and self.rows_written > 0 and self.path is not None:
                partial = self.path.with_name(self.path.name + ".partial")
                os.replace(tmp, partial)
                self.partial_path = partial
            else:
                tmp.unlink()
        except OSError:
            tmp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:  # an unclosed sink must not leave its temporary file behind
        if not getattr(self, "closed", True) and getattr(self, "_tmp", None) is not None:
            with contextlib.suppress(Exception):
                self.abort()

    # -- writing ------------------------------------------------------------------------------
    def write(self, rows: Rows) -> int:
        """Append rows (a dict, a list of dicts, or a DataFrame); returns how many were written."""
        if self.closed:
            raise OutputError(f"cannot write to {self._name}: the sink is closed")
        if self.format == "parquet":
            return self._write_parquet(rows)
        records = _records(rows)
        if not records:
            return 0
        if self.format in ("csv", "tsv"):
            self._write_csv(records)
        else:
            self._write_json(records)
        self.rows_written += len(records)
        if not self._own_stream:
            self._write_text(self._fh.flush)
        return len(records)

    def _write_text(self, fn: Any) -> None:
        try:
            fn()
        except BrokenPipeError:  # the reader of a pipe stopped (`| head`): the caller ends quietly
            raise
        except OSError as exc:
            raise OutputError(f"cannot write {self._name}: {_reason(exc)}") from None

    def _write_csv(self, records: list[Mapping[str, Any]]) -> None:
        if self._columns is None:
            self._columns = _union_keys(records)
            self._write_text(lambda: self._csv.writerow(self._columns))
        cols = self._columns
        known = set(cols)
        d = self.decimals
        lines = []
        for r in records:
            if len(r) > len(known) or not known.issuperset(r.keys()):
                extra = [k for k in r if k not in known]
                if extra:
                    raise OutputError(f"cannot write {self._name}: row has columns not in the CSV header: "
                                      f"{', '.join(map(str, extra[:5]))}")
            lines.append([_csv_cell(r.get(c), d) for c in cols])
        self._write_text(lambda: self._csv.writerows(lines))

    def _write_json(self, records: list[Mapping[str, Any]]) -> None:
        d = self.decimals
        try:
            parts = [json.dumps({str(k): _json_value(v, d) for k, v in r.items()}, ensure_ascii=False,
                                separators=(",", ":"), allow_nan=False) for r in records]
        except (TypeError, ValueError) as exc:
            raise OutputError(f"cannot write {self._name}: a value is not JSON serialisable ({exc})") from None
        if self.format == "jsonl":
            text = "\n".join(parts) + "\n"
        else:
            text = ("\n" if self._json_first else ",\n") + ",\n".join(parts)
            self._json_first = False
        self._write_text(lambda: self._fh.write(text))

    # -- parquet --------------------------------------------------------------------------------
    def _write_parquet(self, rows: Rows) -> int:
        df = _as_dataframe(rows)
        if df is not None:
            n = len(df)
            if n == 0:
                return 0
            self._flush_parquet(final=False)
            self._write_table(self._table_from_pandas(df))
            self.rows_written += n
            return n
        records = _records(rows)
        self._pq_buffer.extend({k if type(k) is str else str(k): _plain(v) for k, v in r.items()} for r in records)
        self.rows_written += len(records)
        if len(self._pq_buffer) >= self.row_group_size:
            self._flush_parquet(final=False)
        return len(records)

    def _flush_parquet(self, final: bool) -> None:
        if self._pq_buffer:
            import pyarrow as pa

            rows, self._pq_buffer = self._pq_buffer, []
            try:
                if self._pq_schema is None:
                    table = pa.Table.from_pylist(rows)
                    if self._columns is not None:
                        table = _order_columns(table, self._columns, self._name)
                else:
                    table = pa.Table.from_pylist(rows, schema=self._pq_schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
                raise OutputError(f"cannot write {self._name}: rows do not fit one table ({exc})") from None
            self._write_table(table)
        if final and self._pq_writer is None:
            import pyarrow as pa

            if self._schema is not None:
                self._write_table(self._schema.empty_table())
            else:
                cols = self._columns or []
                self._write_table(pa.table({c: pa.array([], type=pa.null()) for c in cols}))
        if final and self._pq_writer is not None:
            self._pq_writer.close()

    def _table_from_pandas(self, df: Any) -> Any:
        import pyarrow as pa

        try:
            table = pa.Table.from_pandas(df, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise OutputError(f"cannot write {self._name}: {exc}") from None
        if self._pq_schema is None and self._columns is not None:
            table = _order_columns(table, self._columns, self._name)
        return table

    def _write_table(self, table: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._pq_writer is None:
            schema = self._schema if self._schema is not None else table.schema.remove_metadata()
            # A column that is all-empty in the first batch (e.g. no face had a mesh) would fix its type to
            # null for the whole file: give the known ferkit columns their real type instead
            for i, f in enumerate(schema):
                if pa.types.is_null(f.type) and f.name in _KNOWN_TYPES:
                    schema = schema.set(i, pa.field(f.name, _KNOWN_TYPES[f.name]()))
            if schema != table.schema.remove_metadata() and self._schema is None:
                table = table.cast(schema)
            self._pq_schema = schema
            try:
                self._pq_writer = pq.ParquetWriter(self._fh, schema, compression="zstd")
            except OSError as exc:
                raise OutputError(f"cannot write {self._name}: {_reason(exc)}") from None
        if table.schema != self._pq_schema:
            missing = [f for f in self._pq_schema.names if f not in table.schema.names]
            extra = [f for f in table.schema.names if f not in self._pq_schema.names]
            if extra:
                raise OutputError(f"cannot write {self._name}: rows have columns not in the Parquet schema: "
                                  f"{', '.join(extra[:5])}")
            for name in missing:
                table = table.append_column(name, pa.nulls(len(table), type=self._pq_schema.field(name).type))
            try:
                table = table.select(self._pq_schema.names).cast(self._pq_schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise OutputError(f"cannot write {self._name}: column types changed between batches ({exc})") from None
        try:
            self._pq_writer.write_table(table, row_group_size=max(self.row_group_size, len(table)))
        except OSError as exc:
            raise OutputError(f"cannot write {self._name}: {_reason(exc)}") from None


# ------------------------------------------------------------------------------------------------
# value helpers
# ------------------------------------------------------------------------------------------------
def _is_stream_path(path: Path) -> bool:
    """``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``...: the process's own streams (whatever they lead to)."""
    parts = path.absolute().parts
    if len(parts) < 3:
        return False
    if parts[1] == "dev":
        return parts[2] in ("stdout", "stderr") or (parts[2] == "fd" and len(parts) == 4)
    return parts[1] == "proc" and len(parts) == 5 and parts[3] == "fd"


def _reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc) or type(exc).__name__


def _as_dataframe(rows: Any) -> Any | None:
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(rows, pd.DataFrame):
        return rows
    return None


def _records(rows: Rows) -> list[Mapping[str, Any]]:
    df = _as_dataframe(rows)
    if df is not None:
        return df.to_dict("records")
    if isinstance(rows, Mapping):
        return [rows]
    to_records = getattr(rows, "to_records", None)
    if callable(to_records) and not isinstance(rows, (list, tuple)):
        rows = to_records()
    out = list(rows)
    for r in out[:1]:
        if not isinstance(r, Mapping):
            raise OutputError(f"rows must be mappings (dicts) or a DataFrame, got {type(r).__name__}")
    return out


def _union_keys(records: Iterable[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        for k in r:
            seen.setdefault(str(k), None)
    return list(seen)


def _landmarks_type() -> Any:
    import pyarrow as pa

    return pa.list_(pa.list_(pa.float64()))


#: Parquet types of ferkit columns that can be all-null in a first batch.
_KNOWN_TYPES: dict[str, Any] = {"landmarks": _landmarks_type}


def _order_columns(table: Any, columns: list[str], name: str) -> Any:
    import pyarrow as pa

    extra = [c for c in table.column_names if c not in columns]
    if extra:
        raise OutputError(f"cannot write {name}: rows have columns not in columns=: {', '.join(extra[:5])}")
    for c in columns:
        if c not in table.column_names:
            table = table.append_column(c, pa.nulls(len(table)))
    return table.select(columns)


_SIMPLE = (str, int, float, bool, type(None))


def _plain(v: Any) -> Any:
    """numpy scalars / arrays, paths, enums -> plain Python values (no rounding)."""
    if type(v) in _SIMPLE:
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, PurePath):
        return str(v)
    if isinstance(v, Enum):
        return v.value
    if type(v).__name__ in ("NAType", "NaTType"):  # pandas missing values
        return None
    return v


def _round(v: float, decimals: int | None) -> float:
    if decimals is None:
        return v
    r = round(v, decimals)  # inf / nan pass through unchanged
    return r if r else 0.0  # no "-0.0"


def _json_value(v: Any, decimals: int | None) -> Any:
    if type(v) is float:
        return _round(v, decimals) if math.isfinite(v) else None
    v = _plain(v)
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        return _round(v, decimals) if math.isfinite(v) else None
    if isinstance(v, Mapping):
        return {str(k): _json_value(x, decimals) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_json_value(x, decimals) for x in v]
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, _dt.timedelta):
        return v.total_seconds()
    if hasattr(v, "isoformat"):  # pandas Timestamp
        return v.isoformat()
    return str(v)


def _csv_cell(v: Any, decimals: int | None) -> Any:
    t = type(v)
    if t is float:
        return "" if math.isnan(v) else repr(_round(v, decimals))
    if t is str or t is int:
        return v
    v = _plain(v)
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return repr(_round(v, decimals))
    if isinstance(v, (list, tuple, dict, set, frozenset)):
        buf = io.StringIO()
        json.dump(_json_value(v, decimals), buf, ensure_ascii=False, separators=(",", ":"))
        return buf.getvalue()
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    return v
