"""Boxes: the brace-matched body of ``\\boxed{}``/``\\fbox{}`` and final *runs* of boxes
(``\\boxed{3}, \\boxed{5}`` is one collection, ``3, 5``), read in linear time.

A box body longer than ``MAX_SCAN_CHARS`` is a runaway (or an attack): scanning stops
there with :class:`AnswerTooLong` rather than spend time on it.
"""

from __future__ import annotations

import re

TAIL_CHARS = 16_384
"""Only the tail of a huge response is searched: the final answer lives at the end, and
the bound keeps brace matching and regexes O(TAIL_CHARS) whatever the model emits."""
MAX_SCAN_CHARS = 4_096
"""A boxed body longer than this is not an answer but a runaway."""

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
# What may sit between the items of one answer written as several boxes or math spans:
# commas, semicolons, "and"/"or" (also as \text{}), \quad, line breaks, math delimiters,
# and a short label before the next item ("x = \boxed{3}, y = \boxed{5}").
_SEP_WORDS = r"and|or|et|ou|y|o|und|oder|e|и|или|和|或|以及"
_RUN_GAP_RE = re.compile(
    r"^(?:\s|[,;&$]|\\[(\[\])]|\\\\|\\q?quad(?![A-Za-z])|\\[,;:! ]|~"
    # (also after a part label: "\boxed{3} \text{ for part (a) and } \boxed{5}")
    rf"|\\(?:text|textbf|textrm|mathrm|mbox)\s*\{{\s*(?:(?:for|in)\s+part\s*\(?\w\)?\s*)?(?:{_SEP_WORDS}|,)?\s*\}}"
    rf"|(?<![^\W\d_])(?:{_SEP_WORDS})(?![^\W\d_]))*"
    r"(?:(?:[A-Za-z](?:_\{?\w+\}?)?|\([A-Za-z](?:,\s*[A-Za-z])*\))\s*=\s*)?$"
    # or one word naming what the previous item counts: "\boxed{1} papers and \boxed{2} bins"
    r"|^\s*[A-Za-z]{1,12}\s*(?:,|and)\s*$",
    re.IGNORECASE,
)
_LABEL_RE = re.compile(r"((?:[A-Za-z](?:_\{?\w+\}?)?|\([A-Za-z](?:,\s*[A-Za-z])*\)))\s*=\s*$")


class AnswerTooLong(ValueError):
    """Raised by :func:`find_last_boxed` when the boxed body exceeds ``MAX_SCAN_CHARS``."""


# A LaTeX command whose backslash and first letter a string escape turned into a control
# character ("\frac" in a non-raw Python string is form feed + "rac"): put them back. A
# tab stays a tab (it is plausible whitespace in model text).
_ESCAPED = {"\x07": "\\a", "\x08": "\\b", "\x0b": "\\v", "\x0c": "\\f"}
_ESCAPED_RE = re.compile("[\x07\x08\x0b\x0c]")


def tail_of(text: str) -> str:
    """The last ``TAIL_CHARS`` characters, without NUL bytes (never part of an answer) and
    with escape-mangled LaTeX commands repaired (form feed + ``rac`` -> ``\\frac``)."""
    text = text[-TAIL_CHARS:].replace("\x00", "")
    if _ESCAPED_RE.search(text):
        text = _ESCAPED_RE.sub(lambda m: _ESCAPED[m.group(0)], text)
    return text


def _braced_body(text: str, open_idx: int) -> tuple[str, int] | None:
    """Body of the brace group opening at ``text[open_idx] == "{"`` and the index after its
    closing brace, or None when it is never closed (a truncated response). Escaped braces
    ``\\{``/``\\}`` do not count."""
    depth = 0
    i = open_idx
    end = min(len(text), open_idx + MAX_SCAN_CHARS + 2)
    while i < end:
        c = text[i]
        if c == "\\":
            i += 2  # skip the escaped character: \{ and \} are literal set braces
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[open_idx + 1 : i], i + 1
        i += 1
    if end < len(text):
        raise AnswerTooLong("boxed body exceeds MAX_SCAN_CHARS")
    return None


def _box_at(text: str, start: int) -> tuple[str, int] | None:
    """(content, end) of the box whose command ends at ``start``: ``{...}`` or ``\\boxed 5``."""
    j = start
    while j < len(text) and text[j] in " \t":
        j += 1
    if j < len(text) and text[j] == "{":
        return _braced_body(text, j)
    if j > start:  # "\boxed 5": one whitespace-delimited token, as in MATH solutions
        m = re.match(r"[^\s$]+", text[j : j + MAX_SCAN_CHARS])
        return (m.group(0), j + m.end()) if m else None
    return None


def _join_run(items: list[tuple[str | None, str]]) -> str:
    """One answer from the items of a run: ``3, 5`` or ``x=3, y=5``; a repeated single
    item (``\\boxed{5}. \\boxed{5}``) is that item."""
    bodies = [b.strip() for _, b in items]
    if len(set(bodies)) == 1 and all(label is None for label, _ in items):
        return bodies[0]
    return ", ".join(f"{label}={b}" if label else b for label, b in items)


def final_run(text: str, spans: list[tuple[int, int, str]]) -> str | None:
    """Join the last span with the spans before it while only separators lie between.

    ``spans`` are ``(start, end, body)`` in text order. The label of an item
    (``y = \\boxed{5}``) is kept with it so that named answers stay named."""
    if not spans:
        return None
    items: list[tuple[str | None, str]] = []
    k = len(spans) - 1
    while True:
        start, _, body = spans[k]
        gap_start = spans[k - 1][1] if k > 0 else max(0, start - 40)
        gap = text[gap_start:start]
        label_m = _LABEL_RE.search(gap)
        items.append((label_m.group(1).replace(" ", "") if label_m else None, body))
        if k == 0 or not _RUN_GAP_RE.match(gap):
            break
        k -= 1
    items.reverse()
    if len(items) == 1:
        return items[0][1]
    return _join_run(items)


def boxes(text: str) -> list[tuple[int, int, str]]:
    """All complete boxes as (start, end, content); none at all when the *last* box is
    unclosed (a truncated answer must not fall back to an earlier, intermediate box)."""
    out = []
    matches = list(_BOX_RE.finditer(text))
    for n, m in enumerate(matches):
        got = _box_at(text, m.end())
        if got is None:
            if n == len(matches) - 1:
                return []
            continue
        out.append((m.start(), got[1], got[0]))
    return out


def find_last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}``/``\\fbox{...}`` in ``text`` (brace-matched),
    or the final run of boxes joined as one collection (see the module docstring).

    A final box that is never closed (truncated generation) yields None rather than an
    earlier box: an earlier box is an intermediate result, and rewarding it would teach
    the model that unfinished answers are fine.
    """
    return final_run(text, boxes(text))




def last_stated_box(text: str) -> tuple[int, str] | None:
    """``(start, answer)`` of the final run of *non-empty* boxes, or None. An empty box is
    the prompt's instruction echoed ("put your final answer within \\boxed{}"), never an
    answer, and it does not hide a real box before it."""
    found = [b for b in boxes(text) if b[2].strip()]
    if not found:
        return None
    return found[-1][0], final_run(text, found) or ""
