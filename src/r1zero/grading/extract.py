"""Answer extraction from model text (and from gold answers) in three named modes.

* ``boxed`` — the paper's reward: the last ``\\boxed{}``/``\\fbox{}`` (brace-matched). A
  final *run* of boxes separated only by commas, ``and``/``or``, ``\\quad`` or math
  delimiters (``\\boxed{3}, \\boxed{5}``) is one collection, ``3, 5``: a hedge of several
  boxes is then graded as the list it is, never as its last item.
* ``r1`` — the R1 template's contract: the content of ``<answer>...</answer>`` right after
  ``</think>`` (a box inside the tags wins). No tags, no answer (``format_error``).
* ``auto`` — the answer a careful person reads: the one the response *commits to*. The
  ordered rules (docs/grading.md gives the reason for each):

  0. only the committed part of the text is read: after R1's ``</think>`` (thinking
     never closed commits to nothing), before an end-of-turn token (``<|im_end|>``,
     ``<|im_start|>user`` ...), without GSM8K calculator notes ``<<48/2=24>>``;
  1. commitments, the **last strong one wins** (:mod:`r1zero.grading.markers`): a box
     (empty boxes skipped), ``<answer>`` tags, a format marker (``# Answer`` then the
     answer's paragraph, ``#### 72``, ``A: 72``), an answer phrase in sixteen
     languages and what follows it to the end of its sentence, a postfix phrase ("12 is
     the final answer"); a phrase that introduces no value ("the final answer in a clear
     sentence", "my answer is correct") commits to nothing;
  2. else the last weak commitment (a word answer, a value read back from "This is the
     final answer"); after an answer slot that holds nothing ("Final Answer: I could
     not ..."), rules 3-6 read only the text after it;
  3. a short response (at most ``SHORT_CHARS``) taken whole;
  4. a closing "Therefore ..." sentence that states a value, when no mathematics follows;
  5. the last LaTeX math span (``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``; a ``$``
     before an amount is currency) or final run of spans, names of quantities skipped,
     or the value the span's sentence goes on to state;
  6. the last number (integers, decimals, thousands groups, ``a/b``, ``\\frac{a}{b}``).

  When the gold is a choice letter ``auto`` reads the letter the response commits to
  (:mod:`r1zero.grading.choice`).

Gold answers go through :func:`extract_gold`: the same machinery (delimiters, its own
box, a worked solution reduced to its final answer), except that a short gold is always
taken whole, so ``5, 7`` stays a list and is never cut down to its last number.
"""

from __future__ import annotations

import functools
import re

from .boxes import AnswerTooLong, final_run, find_last_boxed, tail_of
from .choice import extract_choice
from .markers import (
    PHRASE_RE,
    committed_answer,
    conclusion_answer,
    read_fragment,
    tag_content,
    value_after_span,
)
from .spans import (
    DOLLAR_RE,
    is_name,
    is_prose,
    last_number,
    math_spans,
    strip_math_delims,
)

# A response (or fragment) this short is read whole in ``auto`` mode: "-7", "2 500",
# "$(2,4]$", "x = 5 cm". Longer text is a solution, read for its final answer.
SHORT_CHARS = 80
EXTRACT_MODES = ("boxed", "r1", "auto")

_TURN_END_RE = re.compile(
    r"<\|im_end\|>|<\|im_start\|>|<\|eot_id\|>|<\|endoftext\|>|<\|end\|>|<\|user\|>|<\|assistant\|>"
    r"|</s>|\[INST\]|\[/INST\]|<end_of_turn>|<start_of_turn>"
)
_CALCULATOR_RE = re.compile(r"<<[^<>\n]{0,200}>>")


def committed_text(text: str) -> str | None:
    """Rule 0: the part of a response that can hold its committed answer, or None when
    the model is still thinking (``<think>`` never closed)."""
    close = text.rfind("</think>")
    if close >= 0:
        text = text[close + len("</think>") :]
    elif "<think>" in text:
        return None
    for m in _TURN_END_RE.finditer(text):
        if text[: m.start()].strip():  # a chat header before the answer is skipped
            text = text[: m.start()]
            break
    return _CALCULATOR_RE.sub("", text)


def is_text_answer(answer: str) -> bool:
    """True when an answer is words rather than mathematics (``Monday``, ``\\text{the
    second}``, ``五``, ``12 apples``), by the same prose test ``auto`` extraction uses;
    math delimiters are ignored. ``x = 5 cm``, ``3 \\text{ or } 5``, ``B``, ``yes`` are math."""
    return is_prose(DOLLAR_RE.sub(" ", strip_math_delims(answer)))


def extract_r1(text: str) -> str | None:
    """Answer of an R1-format response: inside ``<answer>...</answer>`` right after
    ``</think>``; a box inside the tags wins. None when the tags are missing."""
    body = tag_content(text, need_think=True)
    if body is None:
        return None
    boxed = find_last_boxed(body)
    return boxed if boxed is not None else strip_math_delims(body)


def extract_auto(text: str) -> str | None:
    """The ``auto`` rules 0-6 of the module docstring, in order."""
    text = committed_text(text)
    if text is None:
        return None
    got, rest = committed_answer(text)
    if got is not None:
        return got
    text = text[rest:]  # after an empty "Final Answer:" slot only
    stripped = text.strip()
    if len(stripped) <= SHORT_CHARS:
        return read_fragment(stripped, marker=True, first=False)[0]
    got = conclusion_answer(text)
    if got is not None:
        return got
    spans = math_spans(text)
    valued = [s for s in spans if not is_name(s[2])] or spans
    if valued:
        return value_after_span(text, valued[-1][1]) or final_run(text, valued)
    return last_number(text)


def extract_with_reason(
    response: str, *, mode: str = "boxed", choice: str | None = None
) -> tuple[str | None, str | None]:
    """``(answer, None)`` on success, else ``(None, reason)`` with reason one of
    ``no_answer``, ``format_error`` (r1 tags missing), ``too_long`` (runaway box).

    ``choice``: the gold's letter when it is a multiple-choice letter (``auto`` then reads
    a letter, see :func:`~r1zero.grading.choice.extract_choice`)."""
    text = tail_of(response)
    try:
        if mode == "r1":
            ans = extract_r1(text)
            return (ans, None) if ans is not None else (None, "format_error")
        if mode == "auto" and choice is not None:
            committed = committed_text(text)
            top = "E" if choice <= "E" else "J"
            ans = extract_choice(committed, top) if committed is not None else None
        elif mode == "auto":
            ans = extract_auto(text)
        else:
            ans = find_last_boxed(text)
    except AnswerTooLong:
        return None, "too_long"
    return (ans, None) if ans is not None else (None, "no_answer")


def extract_answer(response: str, *, mode: str = "boxed") -> str | None:
    """The final answer in ``response`` under ``mode`` (``boxed``, ``r1`` or ``auto``; see
    the module docstring), or None when there is none. Never raises on model text."""
    if not isinstance(response, str) or mode not in EXTRACT_MODES:
        return None
    return extract_with_reason(response, mode=mode)[0]


@functools.lru_cache(maxsize=65_536)
def extract_gold(gold: str) -> str:
    """The answer a gold string states: its own box (or final run of boxes), else the
    whole of a short gold without its math delimiters (``$60$ km`` -> ``60 km``), else —
    a worked solution — its final answer by the ``auto`` rules. Cached: the same golds
    recur every step of training."""
    text = tail_of(gold).strip()
    try:
        boxed = find_last_boxed(text)
    except AnswerTooLong:
        return gold
    if boxed and boxed.strip():
        return boxed
    if len(text) <= SHORT_CHARS * 2 and "\n" not in text and not PHRASE_RE.search(text):
        inner = strip_math_delims(text)
        return DOLLAR_RE.sub(" ", inner).strip() if DOLLAR_RE.search(inner) else inner
    try:
        return extract_auto(text) or gold
    except AnswerTooLong:
        return gold
