"""Load math problems from JSONL, JSON, Parquet, Arrow (``save_to_disk``) or hub datasets.

Public sets disagree on field names and answer conventions (``problem`` vs ``question``;
``answer`` vs ``final_answer`` lists; GSM8K's ``#### N``; Minerva's gold buried in a
``\\boxed{}`` of the solution). This module maps all of them to `Problem` records with a
clean gold answer, and reports bad input with the file and the line or row at fault.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1zero.utils import read_jsonl


@dataclass(frozen=True)
class Problem:
    """One question with its gold answer.

    ``answer`` is task specific: a string (math), a list of acceptable strings
    (OlympiadBench / Minerva alternatives), or structured data (knights and knaves roles).
    ``meta`` carries everything else the verifier or a report may need.
    """

    id: str
    question: str
    answer: Any
    meta: dict[str, Any] = field(default_factory=dict)


QUESTION_FIELDS = ("problem", "question", "prompt", "input")
ANSWER_FIELDS = ("answer", "final_answer", "gold")
SOLUTION_FIELD = "solution"
"""Fallback answer field: its gold answer is the last ``\\boxed{}`` (Minerva Math)."""
ID_FIELDS = ("unique_id", "id")

_GSM8K_ANSWER = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")


class DataError(ValueError):
    """A problem file could not be turned into problems; the message names where."""


MAX_UNUSABLE_FRACTION = 0.5
"""Unusable rows (no question, no usable answer, not an object) are skipped with a warning,
as long as they are at most this share of the rows read: the paper's own training set has 2
empty answers in 8,523 rows. Past it the set is an error: most rows unusable means a wrong
file or a wrong field, not a few damaged rows."""
SHOWN_ROWS = 3
"""How many unusable rows a warning or an error quotes (the first ones, with their reason)."""


# ----------------------------------------------------------------------------- public
def load_problems(
    source: str | os.PathLike,
    *,
    question_field: str | None = None,
    answer_field: str | None = None,
    split: str | None = None,
    limit: int | None = None,
    strict: bool = False,
) -> list[Problem]:
    """Load problems from a file, a ``save_to_disk`` directory or a hub dataset name.

    ``source`` may be ``.jsonl``, ``.json`` (a list of objects or ``{"data": [...]}``),
    ``.parquet``, ``.arrow``, a Dataset/DatasetDict directory (``DIR/SPLIT`` picks a
    split of a DatasetDict, as does ``split``), or a hub name (``split`` defaults to
    "test"). Fields are auto-detected unless named. Returns at most ``limit`` problems.

    A row that holds no usable problem is skipped with one warning for the file (how many,
    and the first few with their line and reason), unless ``strict`` (then the first one is
    a DataError) or unless more than `MAX_UNUSABLE_FRACTION` of the rows read are unusable
    (a DataError). Problem ids and ``meta["row"]`` keep the row's own index either way.
    """
    if limit is not None and limit < 1:
        raise DataError(f"limit must be a positive number of problems, got {limit}")
    name, rows = _read_rows(str(source), split)
    q_key, a_key = _resolve_fields(rows, name, question_field, answer_field)
    problems: list[Problem] = []
    unusable: list[str] = []
    for index, (where, row) in enumerate(rows):
        if limit is not None and len(problems) >= limit:
            break
        try:
            problems.append(_to_problem(row, index, where, name, q_key, a_key))
        except DataError as e:
            if strict:
                raise
            unusable.append(str(e).removeprefix(f"{name}: "))
    check_unusable(name, len(problems), unusable)
    return _with_unique_ids(problems, name)


def check_unusable(name: str, usable: int, unusable: list[str]) -> None:
    """The rule every loader shares for rows without a usable problem: none -> nothing to
    say; at most `MAX_UNUSABLE_FRACTION` of the rows -> one warning naming the count and the
    first `SHOWN_ROWS` (``unusable`` holds "line N: reason" strings); more, or no usable
    row at all -> DataError."""
    if not unusable and usable:
        return
    total = usable + len(unusable)
    shown = "; ".join(unusable[:SHOWN_ROWS]) + ("; ..." if len(unusable) > SHOWN_ROWS else "")
    if not usable:
        raise DataError(f"{name}: no problems found" + (f" ({shown})" if unusable else ""))
    if len(unusable) > MAX_UNUSABLE_FRACTION * total:
        raise DataError(
            f"{name}: {len(unusable)} of {total} rows hold no usable problem ({shown}); is it "
            "the right file, and are the question and answer fields the right ones?")
    warnings.warn(
        f"{name}: skipped {len(unusable)} of {total} rows that hold no usable problem ({shown}); "
        "--task.strict-data (train) or --strict-data (eval, analyze) makes them an error",
        stacklevel=3)


def load_records(source: str | os.PathLike, *, split: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """``(display name, raw records)`` of any source `load_problems` reads (file, Arrow
    directory, hub name), for callers with fields of their own (`r1zero sft`'s pairs)."""
    name, rows = _read_rows(str(source), split)
    if not rows:
        raise DataError(f"{name}: no records found")
    return name, [row for _, row in rows]


def pick_field(keys: list[str], explicit: str | None, candidates: tuple[str, ...], role: str,
               name: str) -> str:
    """An explicitly named field (which must exist) or the first candidate present; else a
    DataError listing the fields there are."""
    return _pick(keys, explicit, candidates, role, name)


def is_local_source(source: str | os.PathLike) -> bool:
    """True when ``source`` names something on disk (including ``DIR/SPLIT``)."""
    path = Path(source).expanduser()
    return path.exists() or _is_dataset_dict_dir(path.parent)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` in ``text``, brace-matched.

    Only used on trusted dataset text (gold solutions), so it is deliberately simple.
    """
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


# ----------------------------------------------------------------------------- readers
Row = tuple[str, Any]
"""(location for error messages, e.g. "line 3" or "row 2"; the record: a dict, or None for
a JSONL line that is not a JSON object, or a `_NotAnObject` for a list / table row that is
not one; `_to_problem` reports the last two as unusable rows)."""


def _read_rows(source: str, split: str | None) -> tuple[str, list[Row]]:
    """Dispatch on what ``source`` is; returns a display name and located rows."""
    path = Path(source).expanduser()
    if path.is_file():
        return str(path), _read_file(path)
    if path.is_dir():
        return _read_arrow_dir(path, split)
    if _is_dataset_dict_dir(path.parent):
        if split is not None and split != path.name:
            raise DataError(f"{source}: path names split {path.name!r} but split={split!r}")
        return _read_arrow_dir(path.parent, path.name)
    if path.suffix in _FILE_READERS or source.startswith((".", "/", "~")):
        raise DataError(f"{source}: no such file or directory")
    return _read_hub(source, split)


def _read_file(path: Path) -> list[Row]:
    """Read one file by its extension."""
    reader = _FILE_READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unsupported file type; use one of {', '.join(_FILE_READERS)}")
    return reader(path)


def _read_jsonl(path: Path) -> list[Row]:
    """JSON Lines: one object per line (a line that is not one is a None record, which
    `load_problems` counts as unusable); blank lines are skipped."""
    rows: list[Row] = []
    try:
        for line_no, record, _ in read_jsonl(path):
            rows.append((f"line {line_no}", record))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e})") from e
    return rows


def _read_json(path: Path) -> list[Row]:
    """A JSON list of objects, or an object whose ``data`` key holds that list."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from e
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e})") from e
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        payload = payload["data"]
    if not isinstance(payload, list):
        raise DataError(f'{path}: expected a list of objects or {{"data": [...]}}')
    return _located(payload, str(path))


def _read_parquet(path: Path) -> list[Row]:
    """A Parquet table, one problem per row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: not a readable Parquet file ({e})") from e
    return _located(table.to_pylist(), str(path))


def _read_arrow_file(path: Path) -> list[Row]:
    """A single Arrow stream file as written inside a ``save_to_disk`` directory."""
    import datasets

    try:
        ds = datasets.Dataset.from_file(str(path))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable Arrow file ({e})") from e
    return _located(ds, str(path))


def _read_arrow_dir(path: Path, split: str | None) -> tuple[str, list[Row]]:
    """A ``datasets.save_to_disk`` directory: a Dataset, or a DatasetDict plus a split."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as e:
        raise DataError(f"{path}: not a dataset saved with save_to_disk ({e})") from e
    if isinstance(loaded, datasets.DatasetDict):
        split = _choose_split(path, list(loaded), split)
        return f"{path}/{split}", _located(loaded[split], f"{path}/{split}")
    return str(path), _located(loaded, str(path))


def _choose_split(path: Path | str, available: list[str], split: str | None) -> str:
    """The split to read: the one asked for, or the only one there is."""
    if split is None and len(available) == 1:
        return available[0]
    if split not in available:
        asked = "no split given" if split is None else f"no split {split!r}"
        raise DataError(f"{path}: {asked}; available splits: {', '.join(available)}")
    return split


def _read_hub(name: str, split: str | None) -> tuple[str, list[Row]]:
    """A dataset from the Hugging Face hub (or its local cache)."""
    import datasets

    split = split or "test"
    try:
        ds = datasets.load_dataset(name, split=split)
    # The hub client raises many unrelated types (HTTP, offline, missing config, ...);
    # all mean the same thing to the user, so they are re-raised as one clear error.
    except Exception as e:  # noqa: BLE001
        raise DataError(
            f"could not load {name!r} (split {split!r}) as a local file or hub dataset: "
            f"{type(e).__name__}: {e}. Pass a local .jsonl/.json/.parquet file or a "
            "save_to_disk directory instead."
        ) from e
    return f"{name}[{split}]", _located(ds, name)


_FILE_READERS = {
    ".jsonl": _read_jsonl,
    ".json": _read_json,
    ".parquet": _read_parquet,
    ".arrow": _read_arrow_file,
}


def _is_dataset_dict_dir(path: Path) -> bool:
    """True for a directory written by ``DatasetDict.save_to_disk``."""
    return (path / "dataset_dict.json").is_file()


def _located(records: Iterable[Any], name: str) -> list[Row]:
    """Pair records with "row N" locations; a record that is not an object becomes None
    (`_to_problem` names its type)."""
    return [(f"row {i}", r if isinstance(r, dict) else _NotAnObject(type(r).__name__))
            for i, r in enumerate(records)]


@dataclass(frozen=True)
class _NotAnObject:
    """A row of a JSON list / table that is not an object (its type, for the message)."""

    type_name: str


# ----------------------------------------------------------------------------- fields
def _resolve_fields(
    rows: list[Row], name: str, question_field: str | None, answer_field: str | None
) -> tuple[str, str]:
    """Choose the question and answer fields from the first record that is an object (or
    the user's names)."""
    first = next((row for _, row in rows if isinstance(row, dict)), None)
    if first is None:
        raise DataError(f"{name}: no problems found" + (" (no row is a JSON object)" if rows else ""))
    keys = list(first)
    q_key = _pick(keys, question_field, QUESTION_FIELDS, "question", name)
    a_key = _pick(keys, answer_field, ANSWER_FIELDS + (SOLUTION_FIELD,), "answer", name)
    return q_key, a_key


def _pick(keys: list[str], explicit: str | None, candidates: tuple[str, ...], role: str,
          name: str) -> str:
    """An explicitly named field (which must exist) or the first candidate present."""
    if explicit is not None:
        if explicit not in keys:
            raise DataError(
                f"{name}: {role} field {explicit!r} not found; available fields: "
                f"{', '.join(keys)}"
            )
        return explicit
    for key in candidates:
        if key in keys:
            return key
    raise DataError(
        f"{name}: no {role} field found (looked for {', '.join(candidates)}); available "
        f"fields: {', '.join(keys)}. Name it with {role}_field."
    )


def _to_problem(row: Any, index: int, where: str, name: str, q_key: str,
                a_key: str) -> Problem:
    """Build one `Problem`, checking the question and cleaning the gold answer."""
    location = f"{name}: {where}"
    if not isinstance(row, dict):
        what = "not a JSON object" if row is None else f"a {row.type_name}, not an object"
        raise DataError(f"{location}: {what}")
    if q_key not in row or a_key not in row:
        missing = q_key if q_key not in row else a_key
        raise DataError(f"{location}: missing field {missing!r}; has {', '.join(row)}")
    question = row[q_key]
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{location}: field {q_key!r} is empty or not a string")
    answer = _clean_answer(row[a_key], from_solution=a_key == SOLUTION_FIELD)
    if _is_empty(answer):
        raise DataError(f"{location}: no usable answer in field {a_key!r}")
    meta = {k: v for k, v in row.items() if k not in (q_key, a_key)}
    meta.update(source=name, row=index)
    return Problem(id=_row_id(row, index, name), question=question, answer=answer, meta=meta)


def _clean_answer(value: Any, *, from_solution: bool) -> str | list[str] | None:
    """Normalise a gold answer to a string or a list of alternative strings.

    - a ``solution`` field yields its last ``\\boxed{}`` (Minerva Math);
    - a GSM8K answer ``... #### 1,234`` yields ``1234``;
    - numbers become strings (``27.0`` -> ``27``: AMC golds are stored as floats);
    - lists (OlympiadBench ``final_answer``) are kept, each element cleaned.
    """
    if isinstance(value, list):
        cleaned = [_clean_answer(v, from_solution=from_solution) for v in value]
        return [c for c in cleaned if isinstance(c, str) and c] or None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else repr(value)
    if not isinstance(value, str):
        return None
    if from_solution:
        return last_boxed(value)
    gsm8k = _GSM8K_ANSWER.search(value)
    if gsm8k:
        return gsm8k.group(1).replace(",", "").strip()
    return _strip_math_delimiters(value.strip())


def _strip_math_delimiters(text: str) -> str:
    """``$\\frac{1}{2}$`` -> ``\\frac{1}{2}``; ``$69$,$84$`` -> ``69,84``; keeps ``\\$``."""
    if len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        return _UNESCAPED_DOLLAR.sub("", text).strip()
    return text


def _is_empty(answer: Any) -> bool:
    return answer is None or answer == "" or answer == []


def _row_id(row: dict[str, Any], index: int, name: str) -> str:
    """The dataset's own id when it has one, else ``<stem>-<row>``."""
    for key in ID_FIELDS:
        if row.get(key) not in (None, ""):
            return str(row[key])
    return f"{_stem(name)}-{index}"


def _stem(name: str) -> str:
    """A short, stable label for a source: file stem, or ``dir-split`` for Arrow dirs."""
    path = Path(name.split("[")[0])
    if path.parent.name and _is_dataset_dict_dir(path.parent):
        return f"{path.parent.name}-{path.name}"
    return path.stem or path.name


def _with_unique_ids(problems: list[Problem], name: str) -> list[Problem]:
    """Fall back to row-based ids if the dataset's own ids are not unique."""
    if len({p.id for p in problems}) == len(problems):
        return problems
    stem = _stem(name)
    return [
        Problem(f"{stem}-{p.meta['row']}", p.question, p.answer, p.meta) for p in problems
    ]
