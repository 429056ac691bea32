"""Turn command-line style inputs (files, folders, list files) into a list of media items.

Inputs may be:

* a media file (any extension; an unknown one is recognised by content),
* a folder: its images and videos, recursively by default, in natural order
  (``img2.jpg`` before ``img10.jpg``), skipping hidden files / folders and non-media files (a file without
  an extension is recognised by content; the others skipped are counted and named in one warning),
* a list file: ``@list.txt`` or any ``*.txt`` / ``*.lst`` file, one path per line (blank lines and
  lines starting with ``#`` ignored). Relative paths are taken relative to the list file's folder,
  or to the current folder when they exist only there. Lines may name folders too.

Problems (missing path, unsupported file, empty folder...) never raise: they are returned as
:class:`Source` items with ``error`` set (or collected in ``errors=``), so a batch can go on and a
CLI can print :func:`describe_problems` (e.g. "3 inputs not found: a.jpg, b.mp4, c").
The same file named twice (directly or through a folder / list) is kept once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ferkit.io.media import MEDIA_EXTENSIONS, MediaKind, media_kind

LIST_EXTENSIONS: frozenset[str] = frozenset({".txt", ".lst"})

NOT_FOUND = "not found"
UNSUPPORTED = "not a supported image or video"
EMPTY_FOLDER = "no images or videos in folder"
UNREADABLE = "cannot be read"
EMPTY_PATH = "is an empty path (an unset variable?)"


@dataclass(frozen=True)
class Source:
    """One media item to process, or one input that could not be used (``error`` set).

    ``origin`` is the command-line input it came from (the folder or list file), or ``None`` when
    the item was named directly.
    """

    path: Path
    kind: MediaKind | None
    error: str | None = None
    origin: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def name(self) -> str:
        """The input as users named it (``''`` for an empty path, which ``Path`` would show as ``.``)."""
        return "''" if self.error == EMPTY_PATH else os.fspath(self.path)

    def describe(self) -> str:
        """``path (listed in LIST): problem`` for an input that cannot be used (the list named when it came from
        one)."""
        where = ""
        if self.origin is not None and not os.path.isdir(self.origin):  # a line of a list file, not a folder
            where = f" (listed in {self.origin.lstrip('@')})"
        return f"{self.name}{where}: {self.error}"

    def __str__(self) -> str:
        return self.name if self.ok else f"{self.name}: {self.error}"


def expand_sources(inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str], recursive: bool = True, *,
                   errors: list[Source] | None = None, include_hidden: bool = False,
                   exclude: Iterable[str | os.PathLike[str]] = ()) -> list[Source]:
    """Expand files, folders and list files into :class:`Source` items, in input order.

    Args:
        inputs: paths (a single path is accepted too). ``@file`` or a ``.txt`` / ``.lst`` file
            is read as a list of paths.
        recursive: descend into sub-folders of folder inputs.
        errors: if a list is given, problems are appended to it and the result holds only usable
            items; otherwise problems stay in the result as items with ``error`` set.
        include_hidden: also take hidden files and folders (names starting with ".").
        exclude: folders never entered when walking a folder input (e.g. a job's own results folder).
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out: list[Source] = []
    seen: set[str] = set()
    skip_dirs = {os.path.realpath(d) for d in exclude}

    def add(src: Source) -> None:
        if src.ok:
            key = _key(src.path)
            if key in seen:
                return
            seen.add(key)
        out.append(src)

    for raw in inputs:
        text = os.fspath(raw)
        if not str(text).strip():  # Path("") is the current folder: never analyse it by accident
            out.append(Source(Path(text), None, EMPTY_PATH, None))
            continue
        if text.startswith("@") and not Path(text).exists():
            _expand_list(Path(text[1:]), text, add, recursive, include_hidden, skip_dirs)
            continue
        p = Path(text)
        if p.suffix.lower() in LIST_EXTENSIONS and p.is_file():
            _expand_list(p, text, add, recursive, include_hidden, skip_dirs)
            continue
        _expand_one(p, None, add, recursive, include_hidden, skip_dirs)

    if errors is not None:
        errors.extend(s for s in out if not s.ok)
        return [s for s in out if s.ok]
    return out


def describe_problems(items: Iterable[Source]) -> list[str]:
    """One line per kind of problem, e.g. ``"3 inputs not found: a.jpg, b.mp4, photos/"``."""
    groups: dict[str, list[str]] = {}
    for s in items:
        if s.error is not None:
            groups.setdefault(s.error, []).append(str(s.path))
    lines = []
    for err, paths in groups.items():
        shown = ", ".join(paths[:10]) + (f" (and {len(paths) - 10} more)" if len(paths) > 10 else "")
        lines.append(f"{len(paths)} input{'s' if len(paths) != 1 else ''} {_phrase(err, len(paths))}: {shown}")
    return lines


def _phrase(err: str, n: int) -> str:
    if err == NOT_FOUND:
        return "not found"
    if err == UNSUPPORTED:
        return "not supported images or videos" if n != 1 else "not a supported image or video"
    if err == EMPTY_FOLDER:
        return "with no images or videos" if n != 1 else "with no image or video"
    if err == EMPTY_PATH:
        return "are empty paths" if n != 1 else "is an empty path"
    return err


def _key(p: Path) -> str:
    try:
        return os.path.normcase(str(p.resolve()))
    except OSError:
        return os.path.normcase(os.path.abspath(p))


_Add = Callable[[Source], None]


def _expand_one(p: Path, origin: str | None, add: _Add, recursive: bool, include_hidden: bool,
                skip_dirs: frozenset[str] | set[str] = frozenset()) -> None:
    try:
        is_dir, is_file = p.is_dir(), p.is_file()
    except OSError:
        add(Source(p, None, UNREADABLE, origin))
        return
    if is_dir:
        found = False
        skipped: list[Path] = []
        try:
            for f in _walk(p, recursive, include_hidden, set(skip_dirs), skipped):
                kind = media_kind(f, sniff=not f.suffix)  # (no extension at all: look at the content)
                if kind is not None:
                    found = True
                    add(Source(f, kind, None, origin or str(p)))
                else:
                    skipped.append(f)
        except OSError as exc:
            add(Source(p, None, f"{UNREADABLE} ({exc.strerror or exc})", origin))
            return
        if skipped:
            import warnings

            names = ", ".join(os.path.relpath(f, p) for f in skipped[:5])
            more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            one = len(skipped) == 1
            warnings.warn(f"{p}: skipped {len(skipped)} file{'' if one else 's'} that {'is' if one else 'are'} not "
                          f"{'an image or video' if one else 'images or videos'}: {names}{more}", stacklevel=3)
        if not found:
            add(Source(p, None, EMPTY_FOLDER, origin))
    elif is_file:
        kind = media_kind(p, sniff=True)
        add(Source(p, kind, None if kind else UNSUPPORTED, origin))
    else:
        add(Source(p, None, NOT_FOUND, origin))


def _expand_list(list_path: Path, origin: str, add: _Add, recursive: bool, include_hidden: bool,
                 skip_dirs: frozenset[str] | set[str] = frozenset()) -> None:
    try:
        text = list_path.read_text(encoding="utf-8-sig", errors="replace")
    except FileNotFoundError:
        add(Source(list_path, None, NOT_FOUND, None))
        return
    except OSError as exc:
        add(Source(list_path, None, f"{UNREADABLE} ({exc.strerror or exc})", None))
        return
    base = list_path.parent
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        p = Path(os.path.expanduser(entry))
        if not p.is_absolute():
            in_base = base / p
            p = in_base if in_base.exists() or not p.exists() else p
        _expand_one(p, origin, add, recursive, include_hidden, skip_dirs)


def _walk(root: Path, recursive: bool, include_hidden: bool, visited: set[str],
          skipped: list[Path] | None = None) -> Iterable[Path]:
    """Media files (by extension) and files without an extension under ``root``, in natural order, folders after
    the files of their parent; other files go to ``skipped``.

    Symbolic links are followed, but a folder is never entered twice (no loops).
    """
    real = os.path.realpath(root)
    if real in visited:
        return
    visited.add(real)
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: _natural_key(e.name))
    subdirs = []
    for e in entries:
        if not include_hidden and e.name.startswith("."):
            continue
        try:
            if e.is_dir():
                subdirs.append(Path(e.path))
            elif e.is_file():
                suffix = Path(e.name).suffix.lower()
                if suffix in MEDIA_EXTENSIONS or not suffix:
                    yield Path(e.path)
                elif skipped is not None:
                    skipped.append(Path(e.path))
        except OSError:
            continue
    if recursive:
        for d in subdirs:
            yield from _walk(d, recursive, include_hidden, visited, skipped)


_NUM = re.compile(r"(\d+)")


def _natural_key(name: str) -> tuple:
    parts = _NUM.split(name)
    return tuple((0, int(x), x) if x.isdigit() else (1, x.casefold(), x) for x in parts), name
