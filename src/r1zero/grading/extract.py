"""Answer extraction from model text: the last ``\\boxed{}``/``\\fbox{}``, the R1
``</think> <answer>...</answer>`` format, and opt-in plain-text fallbacks.

Everything here is linear-time string scanning over a bounded tail of the response, so a
megabyte of adversarial text costs microseconds, never a regex catastrophe.
"""

from __future__ import annotations

import re

# Only the tail of a huge response is searched: the final answer lives at the end, and the
# bound keeps brace matching and regexes O(TAIL_CHARS) whatever the model emits.
TAIL_CHARS = 16_384
# A boxed body longer than this is not an answer but a runaway (or an attack); we stop
# scanning there and report it as too long rather than spend time on it.
MAX_SCAN_CHARS = 4_096

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_R1_OPEN_RE = re.compile(r"</think>\s*<answer>")
_ANSWER_IS_RE = re.compile(
    r"(?:final answer|the answer)\s*(?:is|:)?\s*[:=]?\s*(.{1,200}?)\s*(?:$|\n|(?<=[^\d\s])\.(?:\s|$)|\.\s)",
    re.IGNORECASE,
)
_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


class AnswerTooLong(ValueError):
    """Raised by :func:`find_last_boxed` when the boxed body exceeds ``MAX_SCAN_CHARS``."""


def _tail(text: str) -> str:
    """The last ``TAIL_CHARS`` characters, without NUL bytes (they break nothing in
    Python but are never part of an answer and confuse downstream tools)."""
    return text[-TAIL_CHARS:].replace("\x00", "")


def _braced_body(text: str, open_idx: int) -> str | None:
    """Body of the brace group opening at ``text[open_idx] == "{"``, or None when it is
    never closed (a truncated response). Escaped braces ``\\{``/``\\}`` do not count."""
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
                return text[open_idx + 1 : i]
        i += 1
    if end < len(text):
        raise AnswerTooLong("boxed body exceeds MAX_SCAN_CHARS")
    return None


def _box_content(text: str, start: int) -> str | None:
    """Content of the box whose command ends at ``start``: ``{...}`` or ``\\boxed 5``."""
    j = start
    while j < len(text) and text[j] in " \t":
        j += 1
    if j < len(text) and text[j] == "{":
        return _braced_body(text, j)
    if j > start:  # "\boxed 5": one whitespace-delimited token, as in MATH solutions
        m = re.match(r"[^\s$]+", text[j : j + MAX_SCAN_CHARS])
        return m.group(0) if m else None
    return None


def find_last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` in ``text`` (brace-matched).

    A final box that is never closed (truncated generation) yields None rather than an
    earlier box: an earlier box is an intermediate result, and rewarding it would teach
    the model that unfinished answers are fine.
    """
    matches = list(_BOX_RE.finditer(text))
    if not matches:
        return None
    return _box_content(text, matches[-1].end())


def _strip_math_delims(s: str) -> str:
    """Remove surrounding ``$``/``\\(``/``\\[`` delimiters and whitespace."""
    s = s.strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
            return s[len(left) : len(s) - len(right)].strip()
    return s


def extract_r1(text: str) -> str | None:
    """Answer of an R1-format response: inside ``<answer>...</answer>`` right after
    ``</think>``; a box inside the tags wins. None when the tags are missing.

    Linear time: locate the last ``</answer>`` once, then the last opening that precedes
    it (a lazy ``.*?`` regex would rescan the tail from every opening, quadratically).
    """
    last_close = text.rfind("</answer>")
    if last_close < 0:
        return None
    opening = None
    for m in _R1_OPEN_RE.finditer(text, 0, last_close):
        opening = m
    if opening is None:
        return None
    body = text[opening.end() : text.find("</answer>", opening.end())]
    boxed = find_last_boxed(body)
    return boxed if boxed is not None else _strip_math_delims(body)


def extract_fallback(text: str) -> str | None:
    """Opt-in heuristics for unboxed text: "the answer is X", "final answer: X", else
    the last number. Off for training rewards: they reward answer-shaped noise."""
    matches = list(_ANSWER_IS_RE.finditer(text))
    if matches:
        cand = _strip_math_delims(matches[-1].group(1).strip().rstrip("."))
        boxed = find_last_boxed(cand)
        if boxed is not None:
            return boxed
        if cand:
            return cand
    numbers = _NUMBER_RE.findall(text)
    return numbers[-1].rstrip(",") if numbers else None


def extract_with_reason(
    response: str, *, answer_format: str = "boxed", fallbacks: bool = False
) -> tuple[str | None, str | None]:
    """``(answer, None)`` on success, else ``(None, reason)`` with reason one of
    ``no_answer``, ``format_error`` (r1 tags missing), ``too_long`` (runaway box)."""
    text = _tail(response)
    try:
        if answer_format == "r1":
            ans = extract_r1(text)
            return (ans, None) if ans is not None else (None, "format_error")
        ans = find_last_boxed(text)
        if not ans and fallbacks:  # no box, or an empty one (the instruction echoed)
            ans = extract_fallback(text) or ans
    except AnswerTooLong:
        return None, "too_long"
    return (ans, None) if ans is not None else (None, "no_answer")


def extract_answer(
    response: str, *, answer_format: str = "boxed", fallbacks: bool = False
) -> str | None:
    """The final answer in ``response``, or None when there is none.

    ``answer_format="boxed"``: the last ``\\boxed{}``/``\\fbox{}``. ``"r1"``: the content
    of ``<answer>`` tags following ``</think>`` (boxed content inside them if present).
    ``fallbacks=True`` adds "the answer is ..." and last-number heuristics (boxed only:
    the r1 format is the contract, so a response without tags has no answer).
    Never raises on model text.
    """
    if not isinstance(response, str):
        return None
    return extract_with_reason(response, answer_format=answer_format, fallbacks=fallbacks)[0]
