"""All-or-nothing writes: a reader never sees a half-written file or folder.

Files are written to a temporary sibling in the same folder, flushed and
``fsync``-ed, then moved over the target with :func:`os.replace` (atomic on
POSIX and Windows when both paths are on one file system). Folders are built
in a temporary sibling directory and renamed into place only when the whole
block succeeded (:func:`atomic_directory`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_directory",
    "to_json_text",
]


def _fsync_dir(path: Path) -> None:
    """Persist a rename in ``path`` (best effort: not every platform allows opening a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically.

    The bytes go to a hidden temporary file in the same folder, which is
    ``fsync``-ed and then renamed over ``path``; on any failure the temporary
    file is removed and ``path`` is left as it was. The parent folder must
    exist.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    parent = path.parent
    tmp = parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # os.open with mode 0o666 lets the process umask decide the permissions,
    # as a plain open() would (tempfile.mkstemp would force 0o600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    # NumPy scalars and arrays are common in metadata; write them as plain JSON.
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def to_json_text(obj: Any, *, indent: int | None = 2) -> str:
    """Strict JSON text of ``obj`` (NumPy values converted; NaN/inf refused with ValueError)."""
    return json.dumps(obj, indent=indent, allow_nan=False, default=_json_default, ensure_ascii=False)


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    """Write ``obj`` as strict JSON (no NaN/inf) to ``path`` atomically.

    NumPy arrays and scalars are converted to lists and numbers. The object is
    serialised before anything is created, so an unserialisable object leaves
    no file behind.

    Raises
    ------
    ValueError
        ``obj`` holds NaN/inf or a value JSON cannot represent; the message
        names ``path``.
    """
    try:
        text = to_json_text(obj, indent=indent)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot write JSON: {exc}") from None
    return atomic_write_text(path, text + "\n")


@contextlib.contextmanager
def atomic_directory(final_path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder in a temporary sibling and move it to ``final_path`` on success.

    Parameters
    ----------
    final_path : str or Path
        The folder to create. Its parent folders are created if needed.
    overwrite : bool
        If ``final_path`` already exists: False raises ``FileExistsError``
        before the block runs; True replaces the old folder, but only after
        the block succeeded (the old one stays untouched on failure).

    Yields
    ------
    Path
        An empty temporary folder (hidden sibling of ``final_path``) to write
        into.

    Raises
    ------
    FileExistsError
        ``final_path`` exists and ``overwrite`` is False, or it exists and is
        not a folder (a file is never replaced by a folder).

    Notes
    -----
    If the block raises, the temporary folder is removed and the exception
    propagates: no partial output is left. Replacing an existing folder takes
    two renames (old folder aside, new one in), so a crash between them
    can leave ``final_path`` missing with the old data in a hidden
    ``.<name>.old-*`` sibling, never a mix of old and new files.
    """
    final = Path(final_path)
    if final.exists() or final.is_symlink():
        if not final.is_dir():
            raise FileExistsError(f"{final} exists and is not a folder; refusing to replace it")
        if not overwrite:
            raise FileExistsError(f"{final} already exists (pass overwrite=True to replace it)")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{secrets.token_hex(6)}"
    tmp.mkdir()
    try:
        yield tmp
        old: Path | None = None
        if final.exists():
            if not overwrite:
                raise FileExistsError(f"{final} was created while it was being written; not replacing it")
            old = final.parent / f".{final.name}.old-{secrets.token_hex(6)}"
            os.rename(final, old)
        try:
            os.rename(tmp, final)
        except BaseException:
            if old is not None:
                os.rename(old, final)
            raise
        _fsync_dir(final.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
