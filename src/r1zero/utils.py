"""Small helpers shared across the package: deterministic seed derivation and JSONL I/O."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from r1zero.durable import append_lines


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from any tuple of ints/strings, e.g. ``(seed, step, prompt_id, sample)``.

    Hash-based (blake2b) rather than arithmetic so that neighbouring tuples give unrelated
    streams and the result does not depend on batch composition or process layout.
    """
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """Yield ``(line_number, record_or_None, raw_line)``; a record is None when the line is
    not a JSON object (callers decide whether that is fatal). Blank lines are skipped."""
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = None
            yield i, rec if isinstance(rec, dict) else None, line


def append_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> None:
    """Append records, one JSON object per line, durably (`r1zero.durable.append_lines`:
    a torn last line of an earlier crash is cut first; flushed and fsynced)."""
    append_lines(path, [json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records])
