"""Atomic file writes: a reader never sees half a file, a crash never leaves one looking finished."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which is not thread-safe.
_UMASK = _current_umask()


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on a clean exit it replaces `path` in one rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    # mkstemp makes the file private (0600); a bundle is shared with the studio like any file.
    os.fchmod(fd, 0o666 & ~_UMASK)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    with atomic_open(path, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")


def replace_path(source: Path, target: Path) -> None:
    """Move `source` (file or directory) onto `target`, removing what was there.

    A directory cannot be swapped in one rename over a non-empty one, so the old one is first moved
    aside; the gap is covered by the runner, which marks a stage done only after all its moves.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not target.is_symlink():
        trash = target.with_name(f".{target.name}.old")
        if trash.exists():
            shutil.rmtree(trash)
        os.replace(target, trash)
        os.replace(source, target)
        shutil.rmtree(trash)
    else:
        os.replace(source, target)
