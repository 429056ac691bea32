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
