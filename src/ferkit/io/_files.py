"""Private helpers shared by the io modules: input-file checks and message formatting."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ferkit.errors import InputError

PathLike = str | os.PathLike[str]


def check_input_file(path: PathLike, what: str = "file") -> Path:
    """Return ``path`` as a :class:`Path` after checking it is a non-empty, readable regular file.

    Raises :class:`InputError` with a one-line message naming the file otherwise.
    """
    if isinstance(path, bytes):  # pragma: no cover - defensive, PathLike[bytes] is not supported
        path = os.fsdecode(path)
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"{what} not found: {p}") from None
    except PermissionError:
        raise InputError(f"cannot read {what} {p}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if p.is_dir():
        raise InputError(f"{p} is a folder, expected an {what} file" if what[0] in "aeiou" else
                         f"{p} is a folder, expected a {what} file")
    if st.st_size == 0:
        raise InputError(f"{what} {p} is empty (0 bytes)")
    if not os.access(p, os.R_OK):
        raise InputError(f"cannot read {what} {p}: permission denied")
    return p


def one_line(exc: BaseException | str, limit: int = 200) -> str:
    """A short single-line description of an exception (or message) for user-facing errors."""
    text = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def file_sha256(path: PathLike) -> str:
    """Hex sha256 of a file, read in 1 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FolderLock:
    """An exclusive lock on ``folder/.lock`` (``flock``), held while in use: a second process using the same
    folder (a batch archive, a training run) gets :class:`~ferkit.errors.OutputError` with ``busy`` as the
    message. Released when closed, or when the process ends, however it ends."""

    def __init__(self, folder: PathLike, busy: str) -> None:
        self.path = Path(folder) / ".lock"
        self.busy = busy
        self._fh: object = None

    def __enter__(self) -> FolderLock:
        import fcntl

        from ferkit.errors import OutputError

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+")  # noqa: SIM115 - held until __exit__
        except OSError as exc:
            raise OutputError(f"cannot use {self.path.parent}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise OutputError(self.busy) from None
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()  # type: ignore[attr-defined]  # closing releases the flock
            self._fh = None
