"""Where the mathematics is in model prose: math spans (with ``$`` told apart as a math
delimiter or a currency sign), numbers as people write them, and the tests that say
whether a piece of text is prose, mathematics, or only the name of a quantity.

Everything here is linear-time scanning with bounded look-ahead, so a megabyte of
adversarial output costs microseconds, never a regex catastrophe.
"""

from __future__ import annotations

import re

MAX_SPAN_CHARS = 2_000  # a math span longer than this is not an answer being stated

DOLLAR_RE = re.compile(r"(?<!\\)\$")  # a dollar that is not "\$" (a literal dollar sign)
ENV_RE = re.compile(r"\\(?:begin|end)\s*\{[^{}]*\}(?:\{[lcr|]*\})?")
CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uff01-\uff60]")
# \text-like wrappers (and their content) and other commands, removed before the prose test.
COMMAND_RE = re.compile(r"\\[A-Za-z]+")
TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textit|textrm|textnormal|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")
_WORD_RE = re.compile(r"[^\W\d_]{2,}")
MATH_WORDS = frozenset(
    """and or sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh log ln lg exp max min
    gcd lcm mod det deg dim ker inf sup lim pi cm mm km kg mg ml in ft yd mi mph hr hrs min
    sec sq units unit meters metres meter degrees degree radians dollars cents pm am
    no yes sqrt cbrt choose""".split()
)
_STOP_2 = frozenset("is to of it be so we an as at by if on no my he me us up do go".split())

# One number as people write it: sign, digits with thousands groups (comma, space, thin
# space), a decimal part (point or comma), a/b, \frac{a}{b}, a trailing percent. A
# sentence's closing period does not stop "2/3." from being read as a fraction.
NUMBER_RE = re.compile(
    r"-?\\[dt]?frac\{-?\d+\}\{\d+\}"
    r"|(?<![A-Za-z0-9_.])-?(?:\d{1,3}(?:(?:,|\\,|\s)\d{3})+(?![\d])|\d+)(?:[.,]\d+(?![\d,]))?"
    r"(?:\s*/\s*\d+(?!\d|\.\d))?\s*(?:\\?%)?"
)
# Between the parts of one quantity: a unit word, then "and" ("3 hours and 20 minutes").
_SEP_WORDS = r"and|or|et|ou|y|o|und|oder|e|и|или|和|或|以及"
_COMPOUND_GAP_RE = re.compile(rf"^\s*[^\W\d_]+\s+(?:{_SEP_WORDS})\s+$", re.IGNORECASE)
# A number that only describes the answer relative to another quantity ("2 less than x").
# A number scaled by the word after it ("5 million", "4 squared") is not that number.
_RELATIVE_RE = re.compile(
    r"^\s*(?:less|more|greater|smaller|fewer|larger|higher|lower|times|percent\s+of|hundred|thousand"
    r"|million|billion|trillion|dozen|squared|cubed|factorial)\b",
    re.IGNORECASE,
)
NEGATION_RE = re.compile(
    r"(?:\bnot|\bcannot|n't|\bno|\bnon|\bpas|\bnicht|\bkein\w*|\bnão|\bnon è|不是|不|非|\bне|\bнет|아니)"
    r"(?:\s+(?:be|the\s+answer|option|choice|answer|la\s+réponse|c'est|es|è|ist|option))?[\s:,(*]*$",
    re.IGNORECASE,
)

# The name of a quantity, not its value: "n", "ABCDEFGH", "a_1", "f(x)", "\angle ABC",
# "n^{th}". Read as an answer only when nothing else is stated.
_NAME_RE = re.compile(
    r"^(?:\\(?:angle|triangle|overline|overrightarrow|vec|widehat|hat|bar|mathbf)\s*\{?\s*)?"
    r"[A-Za-z]{1,12}\}?(?:_\{?[A-Za-z0-9]{1,4}\}?)?(?:\s*\([A-Za-z](?:\s*,\s*[A-Za-z])*\))?"
    r"(?:\^\{?(?:th|st|nd|rd|\\(?:text|mathrm)\{th\})\}?)?$"
)


_HOPE_RE = re.compile(r"\s*I\s+hope\s+it\s+is\s+correct\.?$", re.IGNORECASE)


def strip_hope(text: str) -> str:
    """``text`` without trailing space and lm-eval's closing "I hope it is correct." (only
    the last 60 characters are searched: linear time on any input)."""
    text = text.rstrip()
    tail = text[-60:]
    m = _HOPE_RE.search(tail)
    return text[: len(text) - len(tail) + m.start()] if m else text


def strip_math_delims(s: str) -> str:
    """Remove surrounding ``$``/``$$``/``\\(``/``\\[`` delimiters, bold markers and space."""
    s = s.strip().strip("*").strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
            inner = s[len(left) : len(s) - len(right)]
            if left == "$" and "$" in inner:
                return s  # "$5$ and $7$": two spans, not one
            return inner.strip()
    return s


def is_prose(s: str) -> bool:
    """True when ``s`` holds words that are not mathematics: any CJK character, or a word
    of three or more letters (two for common English words) outside LaTeX commands that
    is not a unit, separator or function name. ``\\text{Monday}`` is prose; ``x = 5 cm``,
    ``PQ = 7`` and ``3 \\text{ or } 5`` are not."""
    if CJK_RE.search(s):
        return True
    s = TEXT_CMD_RE.sub(lambda m: " " + m.group(1) + " ", ENV_RE.sub(" ", s))
    s = COMMAND_RE.sub(" ", s)
    for w in _WORD_RE.findall(s):
        low = w.lower()
        if low in MATH_WORDS:
            continue
        if len(w) >= 3 or low in _STOP_2:
            return True
    return False


def is_name(body: str) -> bool:
    """True when a math span only names a quantity (``$n$``, ``$ABCDEFGH$``, ``$f(x)$``):
    "The largest $n$ is 34" states 34, not n."""
    return bool(_NAME_RE.match(body.strip()))


def _is_currency(body: str) -> bool:
    """True when a ``$`` that opens ``body`` is a currency sign, not a math delimiter:
    it is followed by a digit and the would-be span is prose ("$1,000 and then $"), or
    ends in an operator or space ("$4.00 + $2.00": the second ``$`` opens an amount)."""
    if not body[:1].isdigit():
        return False
    tail = body.rstrip()
    return tail != body or tail[-1:] in "+-*/=" or is_prose(body) or "\n" in body


_CLOSERS = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}
_OPEN_RE = re.compile(r"\$\$|(?<!\\)\$|\\\(|\\\[")


def _closing(text: str, tok: str, start: int) -> int:
    """Index of the delimiter closing a span opened by ``tok`` whose body starts at
    ``start``, or -1 within ``MAX_SPAN_CHARS``."""
    end = min(len(text), start + MAX_SPAN_CHARS + 2)
    k = text.find(_CLOSERS[tok], start, end)
    while tok == "$" and k > 0 and text[k - 1] == "\\":
        k = text.find("$", k + 1, end)  # "\$" inside a span is a dollar sign
    return k


def math_spans(text: str) -> list[tuple[int, int, str]]:
    """Math spans ``$$..$$``, ``$..$``, ``\\(..\\)``, ``\\[..\\]`` as (start, end, body), in
    order, with currency dollars skipped (see :func:`_is_currency`). Empty bodies are
    dropped."""
    out: list[tuple[int, int, str]] = []
    i = 0
    while True:
        m = _OPEN_RE.search(text, i)
        if m is None:
            return out
        tok = m.group(0)
        close = _closing(text, tok, m.end())
        if close < 0:
            i = m.end()
            continue
        body = text[m.end() : close]
        if tok == "$" and _is_currency(body):
            i = m.end()  # the closing "$" may still open a span of its own
            continue
        end = close + len(_CLOSERS[tok])
        if body.strip():
            out.append((m.start(), end, body.strip()))
        i = end


def inside_spans(spans: list[tuple[int, int, str]], pos: int) -> bool:
    """True when ``pos`` lies strictly inside one of ``spans``."""
    return any(s < pos < e for s, e, _ in spans)


def negated(text: str, start: int) -> bool:
    """True when a negation ("not", "pas", "nicht", "不是", "не", ...) stands right before
    ``text[start]``."""
    return bool(NEGATION_RE.search(text[max(0, start - 24) : start]))


def last_number(text: str) -> str | None:
    """The last number in ``text`` as written (``\\frac{7}{3}`` and ``5/12`` whole)."""
    found = NUMBER_RE.findall(text)
    return found[-1].strip() if found else None


def first_number(text: str) -> str | None:
    """The first number in ``text`` that is not negated ("12, nicht 13" -> 12; "not 12
    but 13" -> 13): after an answer phrase, the answer comes first. None when it is the
    first part of a compound quantity ("3 hours and 20 minutes"), a relation to another
    quantity ("2 less than the total") or scaled by a word ("5 million"): no single
    number is the answer there."""
    found = [m for m in NUMBER_RE.finditer(text) if not negated(text, m.start())]
    if not found:
        return None
    if len(found) > 1 and _COMPOUND_GAP_RE.match(text[found[0].end() : found[1].start()]):
        return None
    if _RELATIVE_RE.match(text[found[0].end() : found[0].end() + 24]):
        return None
    return found[0].group(0).strip()


def math_tail(text: str) -> str | None:
    """The longest run of words at the end of a prose fragment that is mathematics and
    more than one number (``x = 3 or x = -3``, ``47 + 85 = 132``), else None."""
    words = text.rstrip(" .。!?").split()
    best = None
    for k in range(len(words) - 1, -1, -1):
        w = words[k]
        if is_prose(w) or (w.isalpha() and len(w) > 1 and w.lower() not in MATH_WORDS):
            break  # a word ("es", "we") ends the run, whichever language it is in
        best = " ".join(words[k:])
    best = best.lstrip("=:：").strip() if best else None
    if not best or not re.search(r"\d", best) or NUMBER_RE.fullmatch(best):
        return None
    return best if re.search(r"[=<>+*/^]|\\|[A-Za-z]|,", best) else None
