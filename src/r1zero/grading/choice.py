"""Multiple choice: the letter a response commits to, when the gold is a choice letter.

A letter counts only when the response commits to it: in a box or answer tags, opening
the response ("D. It cannot be A or B"), after an answer phrase, declared right ("**B**
is correct"), the only letter of a short response, or the letter a long response ends
on ("so I would say it's B"). A letter that is only a name in prose ("Player A wins
regardless of B's responses"), a negated one ("not C") or a hedge listing several ("A or
B or C") is no answer.
"""

from __future__ import annotations

import functools
import re

from .boxes import find_last_boxed
from .markers import PHRASE_RE, sentence, tag_content
from .spans import TEXT_CMD_RE, is_prose, negated, strip_hope, strip_math_delims

SHORT_CHARS = 80  # a response this short is read whole (the same bound as ``auto``)
MAX_PHRASES = 12

# A gold that is a letter ("B", "(B)", "B.") or an option with its text: "(D) Alina",
# "C) 12", "B. 3/4", "C Cecile" (a letter and a one-word name on the first line).
_GOLD_CHOICE_RE = re.compile(r"^\(?([A-J])\)?[.:]?$")
_GOLD_OPTION_RE = re.compile(r"^\(([A-J])\)\s+\S|^([A-J])[).:]\s+\S|^([A-J])\s+[A-Z][a-z]+(?:\n|$)")
# Between two letters of one negated list: "not C or D", "ni C ni D", "不是C或D".
_LETTER_CHAIN_RE = re.compile(r"^[\s,*()]*(?:or|and|nor|ni|ou|o|oder|noch|или|и|或|和|、)?[\s,*()]*$", re.IGNORECASE)
# Between two letters of one hedge: "A or B", "A, B, or D", "(A)/(B)".
_HEDGE_GAP_RE = re.compile(r"^[\s*()]*(?:,|/|,?\s*(?:or|and|oder|ou|o|или|或|和|、))[\s*()]*$", re.IGNORECASE)
MAX_GAP = 40  # a list separator between two letters ("A, B, or D") is short


@functools.lru_cache(maxsize=65_536)
def gold_choice(gold: str) -> str | None:
    """The letter when a gold answer is a multiple-choice letter (``B``, ``(B)``,
    ``\\text{B}``, ``$\\textbf{(B)}$``, ``(D) Alina``), else None."""
    s = TEXT_CMD_RE.sub(lambda m: m.group(1), strip_math_delims(gold)).strip().strip("*")
    m = _GOLD_CHOICE_RE.match(s.replace(" ", "")) or _GOLD_OPTION_RE.match(s)
    return next((g for g in m.groups() if g), None) if m else None


def _letters(text: str, top: str) -> list[re.Match]:
    """Standalone choice letters A..``top`` in ``text``, without the negated ones ("not B",
    "pas B", "不是 D", and C *and* D in "it can't be C or D") and without the English
    article ("A good guess")."""
    out: list[re.Match] = []
    prev_end, prev_negated = -1, False
    for m in re.finditer(rf"(?<![A-Za-z0-9_\\])([A-{top}])(?![A-Za-z0-9_])", text):
        if m.group(1) == "A" and re.match(r"\s+(?!(?:or|and|nor)\b)[a-z]", text[m.end() : m.end() + 5]):
            continue  # the article: "A good guess is B" (but "A or B" is a hedge)
        gap = text[prev_end : m.start()] if prev_end >= 0 else ""
        chained = prev_negated and len(gap) <= MAX_GAP and bool(_LETTER_CHAIN_RE.match(gap))
        prev_end, prev_negated = m.end(), chained or negated(text, m.start())
        if not prev_negated:
            out.append(m)
    return out


def _joined(text: str, a: re.Match, b: re.Match) -> bool:
    """True when two different letters are joined as a list ("A or B", "A, B, or D"): a
    hedge when one of them is the letter committed to."""
    gap = text[a.end() : b.start()]
    return a.group(1) != b.group(1) and len(gap) <= MAX_GAP and bool(_HEDGE_GAP_RE.match(gap))


def _one_letter(found: list[re.Match]) -> str | None:
    """The letter when exactly one distinct letter was named, else None (a hedge)."""
    return found[0].group(1) if len({m.group(1) for m in found}) == 1 else None


def _in_container(text: str, top: str) -> str | None:
    """The letter in the final box or answer tags; anything else there is returned as
    written (graded wrong): "(C)+1", or a box naming several letters."""
    for inner in (find_last_boxed(text), tag_content(text, need_think=False)):
        if inner and inner.strip():
            letter = gold_choice(inner)
            if letter is not None:
                return letter
            plain = TEXT_CMD_RE.sub(lambda m: m.group(1), inner)
            return (_one_letter(_letters(plain, top)) if is_prose(plain) else None) or inner
    return None


def _after_phrases(text: str, top: str) -> str | None:
    """The letter after the last answer phrase that names one (a hedge is returned as
    the fragment it is, and graded wrong)."""
    for m in reversed(list(PHRASE_RE.finditer(text))[-MAX_PHRASES:]):
        frag = sentence(text, m.end())
        found = _letters(frag, top)
        first = re.match(rf"[\s:*]*\(?([A-{top}])\)?\**(?![A-Za-z0-9_'’])", frag)
        if first and not negated(frag, first.start(1)):
            # a letter right after the phrase is the answer, even "A because ..."
            found = [f for f in found if f.start() != first.start(1)]
            found.insert(0, first)
        if found:
            hedge = len(found) > 1 and _joined(frag, found[0], found[1])
            return frag.strip() if hedge else found[0].group(1)
    return None


def _declared(text: str, top: str) -> str | None:
    """A letter declared right: "**B** is correct", "Option (C) is the answer"."""
    last = None
    for m in re.finditer(
        rf"(?<![A-Za-z0-9_\\'’])\**\(?([A-{top}])\)?\**\s+is\s+(?:the\s+)?(?:correct|right|best|answer)\b", text
    ):
        if not negated(text, m.start()):
            last = m
    return last.group(1) if last else None


def _closing_letter(text: str, top: str) -> str | None:
    """The letter a long response ends on ("... so I would say it's B."); None for a
    hedge ("... A or B.") or a letter-free ending. A last line listing an option ("(C)
    18 - too big") is not a choice: an evaluation of options ends that way too."""
    body = strip_hope(text)
    end = re.search(rf"(?<![A-Za-z0-9_\\'’])\**\(?([A-{top}])\)?\**\s*(?:[.!。]\s*)?$", body)
    if end is None or negated(body, end.start()):
        return None
    window = body[max(0, end.start() - 200) :]
    found = _letters(window, top)
    return None if len(found) > 1 and _joined(window, found[-2], found[-1]) else end.group(1)


def extract_choice(text: str, top: str = "E") -> str | None:
    """The letter A..``top`` that ``text`` commits to (rules in the module docstring), or
    None. A box or a short response naming several letters ("B or C") is a hedge: it is
    returned whole and graded wrong."""
    got = _in_container(text, top)
    if got is not None:
        return got
    lead = re.match(rf"^\s*[*(]*([A-{top}])[*]*[).:]", text)
    if lead:  # "D. It cannot be A or B": a letter opening the response, then a stop
        return lead.group(1)
    got = _after_phrases(text, top) or _declared(text, top)
    if got is not None:
        return got
    if len(text.strip()) <= SHORT_CHARS:
        found = _letters(text, top)
        return (_one_letter(found) or text.strip()) if found else None
    return _closing_letter(text, top)
