"""Writes that a kill -9 or a power cut at any instant leaves whole: a file is the old or the
new version (temp + fsync + rename), an appended JSONL row is complete or absent (append +
flush + fsync; a torn last line is cut before the next append), and a directory is complete
before anything names it (a manifest of sizes and SHA-256 hashes, written last, checked by
the reader).

One small module below everything else, so that the run directory (logging.py), checkpoints
(learner/checkpoint.py), eval samples and results use the same three rules.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

MANIFEST = "manifest.json"
"""The file that seals a directory: every other file's size and SHA-256, written last."""

HASH_THREADS = 4
"""Files hashed at once (hashlib releases the GIL on large buffers): a sharded optimizer
state hashes ~4x faster than file by file; ~1.7 GB/s per thread with SHA-NI."""


# ----------------------------------------------------------------------------- files
def fsync_dir(path: str | os.PathLike) -> None:
    """Make a directory's entries (a rename, a new file) durable; POSIX needs the directory
    itself synced, not only the file. A no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a directory; nothing more to do
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Replace ``path`` with ``data``: written to a temporary file beside it, synced, then
    renamed over it (rename is atomic on one filesystem), so a reader or a crash sees the
    old or the new content, never a mix. The temporary file is removed on failure
    (`replaced` does the work)."""
    with replaced(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


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
    """`write_atomic` for a file written by someone else (a command's output, streamed row
    by row): yield a temporary path beside ``output_path``; when the block finishes, the
    file is synced and renamed over ``output_path``. When the block raises, or calls
    `discard`, the temporary file is removed and ``output_path`` is left as it was."""
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
            fsync_dir(out.parent)
    finally:
        tmp.unlink(missing_ok=True)


def discard(tmp: Path) -> None:
    """Inside `replaced`: drop what was written; the old output stays."""
    tmp.unlink(missing_ok=True)


def append_synced(f: IO[str], text: str) -> None:
    """Append ``text`` (whole lines) to an open file and make it durable before returning:
    a row the caller has logged survives a crash that follows."""
    f.write(text)
    f.flush()
    os.fsync(f.fileno())


def append_lines(path: str | os.PathLike, lines: Iterable[str]) -> None:
    """Append lines (each ending in a newline) to ``path`` durably; a torn last line left by
    an earlier crash is cut first, so the new rows never glue onto a fragment."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cut_torn_tail(path)
    with open(path, "a", encoding="utf-8") as f:
        append_synced(f, "".join(lines))


def cut_torn_tail(path: str | os.PathLike) -> int:
    """Cut a last line left without its newline by a crash mid-append; returns the bytes
    cut (0 when the file ends in a newline, is empty or does not exist)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return 0
        size = f.seek(0, os.SEEK_END)
        keep = _last_newline_end(f, size)
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
        return size - keep


def _last_newline_end(f, size: int, block: int = 1 << 16) -> int:
    """Offset just past the last b"\\n" of a binary file (0 if none), read backwards in
    blocks so a large file is not read whole."""
    end = size
    while end > 0:
        start = max(0, end - block)
        f.seek(start)
        at = f.read(end - start).rfind(b"\n")
        if at >= 0:
            return start + at + 1
        end = start
    return 0


# ----------------------------------------------------------------------------- directories
def sha256_file(path: Path, block: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in 4 MiB blocks (``hashlib.file_digest`` needs 3.11)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(block):
            h.update(data)
    return h.hexdigest()


def _sync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _files(directory: Path) -> list[Path]:
    """Every regular file under ``directory`` except the manifest, sorted."""
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)


def _entry(directory: Path, path: Path) -> tuple[str, dict[str, int | str]]:
    _sync_file(path)  # written by other libraries (safetensors, DCP, torch.save): sync here
    return path.relative_to(directory).as_posix(), {"bytes": path.stat().st_size,
                                                    "sha256": sha256_file(path)}


def seal(directory: str | os.PathLike, **meta) -> dict:
    """Sync every file of ``directory`` and write its manifest (sizes, SHA-256) last, then
    sync the directories: once this returns, `check` passes until a byte changes. Extra
    ``meta`` (e.g. the step) is stored beside the file list. Returns the manifest."""
    directory = Path(directory)
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        files = dict(pool.map(lambda p: _entry(directory, p), _files(directory)))
    manifest = {**meta, "files": files}
    write_atomic(directory / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    for sub in sorted({p.parent for p in _files(directory)} | {directory}, reverse=True):
        fsync_dir(sub)
    return manifest


def check(directory: str | os.PathLike, *, hashes: bool = True) -> str | None:
    """None when ``directory`` matches its manifest, else the first problem in words (no
    manifest, a file missing, a size or hash that differs). ``hashes=False`` checks
    presence and sizes only (what a torn write changes; milliseconds for any size)."""
    directory = Path(directory)
    try:
        files = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))["files"]
    except FileNotFoundError:
        return f"no {MANIFEST} (not sealed: its save did not finish)"
    except (ValueError, KeyError, TypeError):
        return f"{MANIFEST} is not readable"
    for name, want in files.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != want["bytes"]:
            return f"{name} has {size} bytes, its manifest says {want['bytes']}"
    if hashes:
        with ThreadPoolExecutor(HASH_THREADS) as pool:
            sums = dict(zip(files, pool.map(lambda n: sha256_file(directory / n), files)))
        for name, want in files.items():
            if sums[name] != want["sha256"]:
                return f"{name} does not match its SHA-256 in the manifest (changed after the save)"
    return None
