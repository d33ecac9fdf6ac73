"""Writing a command's output file without harming its input or an older output: an output
that is the input (the same path, a symbolic link to it, or a hard link of it) is refused,
and the output is written beside its destination and renamed into place once complete, so
an interrupted or failed command leaves the previous file (or none), never a torn one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


class OutputError(ValueError):
    """An output path that would destroy an input, or that cannot be written."""


def check_distinct(input_path: str | os.PathLike, output_path: str | os.PathLike) -> None:
    """Raise OutputError when writing ``output_path`` would overwrite ``input_path``:
    the same file by path, symbolic link or hard link (``os.path.samefile`` compares the
    device and inode, which is what a hard link shares)."""
    out = Path(output_path)
    if out.exists() and Path(input_path).exists() and os.path.samefile(input_path, out):
        same = "is" if os.path.abspath(out) == os.path.abspath(input_path) else "is a link to"
        raise OutputError(f"--output {out} {same} the input {input_path}: writing it would destroy "
                          "the input; choose another output path")


@contextlib.contextmanager
def replaced(output_path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``output_path`` for the block to write; when the block
    finishes, that file is flushed to disk and renamed over ``output_path`` (atomic on one
    filesystem). When the block raises, or calls `discard`, the temporary file is removed
    and ``output_path`` is left as it was."""
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A fresh name, not mkstemp's file: the caller creates it, with the usual permissions.
    tmp = out.parent / f".{out.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        yield tmp
        if tmp.exists():
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())  # the data is on disk before the name points at it
            os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def discard(tmp: Path) -> None:
    """Inside `replaced`: drop what was written; the old output stays."""
    tmp.unlink(missing_ok=True)
