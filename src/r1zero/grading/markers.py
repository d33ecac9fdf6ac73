"""Where a response commits to its final answer: boxes, answer tags, format markers
(``# Answer``, ``A: 72``, ``#### 72``), answer phrases ("the final answer is", in sixteen
languages), postfix phrases ("12 is the final answer") and a closing conclusion.

Every such *commitment* is read into an answer and marked **strong** (the text commits
to a value) or **weak** (only words, or a value the reader has to look back for). The
last strong commitment wins, then the last weak one: a later explicit answer beats an
earlier box, while an answer phrase inside prose ("I will write the final answer in a
clear sentence", "my answer is correct") commits to nothing and is skipped.
"""

from __future__ import annotations

import re

from .boxes import final_run, find_last_boxed, last_stated_box
from .spans import (
    DOLLAR_RE,
    TEXT_CMD_RE,
    MATH_WORDS,
    first_number,
    inside_spans,
    is_name,
    is_prose,
    last_number,
    math_spans,
    math_tail,
    strip_hope,
    strip_math_delims,
)
from .synonyms import TEXT_SYNONYMS

PHRASE_CHARS = 300  # how far after an answer phrase the answer may run (one sentence)
PARAGRAPH_CHARS = 300  # how much of the paragraph after a "# Answer" heading is read
MAX_PHRASES = 12  # answer phrases read per response (from the end): a bound on the work

# Answer phrases; the answer is what follows. Ordered longest first within a language so
# that "the final answer is" wins over "answer is" at the same position.
_PHRASES = [
    # English (incl. lm-eval's "Final Answer: The final answer is X. I hope it is correct.")
    r"(?:the\s+)?final\s+answer\s*(?:is|:|=)?", r"(?:the\s+)?(?:correct\s+)?answer\s+(?:is|would\s+be|should\s+be|will\s+be)",
    r"(?:the\s+)?correct\s+(?:option|choice)\s+is", r"answer(?:\*\*|__)?\s*[:=]", r"\bans\.?\s*[:=]",
    # French, Spanish, Portuguese, Italian
    r"(?:la\s+)?(?:bonne\s+)?r[ée]ponse\s+(?:finale\s+|correcte\s+)?est", r"r[ée]ponse(?:\s+finale)?\s*:",
    r"(?:la\s+)?respuesta\s+(?:final\s+|correcta\s+)?es", r"respuesta(?:\s+final)?\s*:",
    r"(?:a\s+)?resposta\s+(?:final\s+|correta\s+)?[ée]", r"resposta(?:\s+final)?\s*:",
    r"(?:la\s+)?risposta\s+(?:finale\s+|corretta\s+)?[èe]", r"risposta(?:\s+finale)?\s*:",
    # German, Dutch, Turkish, Indonesian, Vietnamese
    r"(?:die\s+)?(?:richtige\s+|endg[üu]ltige\s+)?antwort\s+(?:ist|lautet)", r"antwort\s*:",
    r"(?:het\s+)?(?:juiste\s+)?antwoord\s+is", r"antwoord\s*:",
    r"cevap\s*:", r"(?:doğru\s+)?cevap\s*", r"jawaban(?:nya)?\s*(?:adalah|:)",
    r"đáp\s+án\s*(?:là|:)", r"câu\s+trả\s+lời\s*(?:là|:)",
    # Russian, Arabic, Hindi
    r"(?:правильный\s+|окончательный\s+)?ответ\s*(?::|—|-|равен|будет)?",
    r"(?:الإجابة|الجواب)(?:\s+الصحيحة|\s+النهائية)?\s*(?:هي|هو|:)?", r"उत्तर\s*(?:है|:)",
    # Chinese, Japanese, Korean
    r"(?:最终|最后的?)?答案\s*(?:是|为|應為|应为|:|：)?", r"故选|所以选|因此选|应选|选择?", r"正确(?:选项|答案)\s*(?:是|为|:|：)?",
    r"答えは|答え\s*[:：]|正解は|解答\s*[:：]", r"(?:정)?답은|(?:정)?답\s*[:：]|정답\s*",
]
PHRASE_RE = re.compile("|".join(f"(?:{p})" for p in _PHRASES), re.IGNORECASE)
# Format markers: the answer follows by the format's own rule.
# - a line holding only an answer label (PRM800K's "# Answer", "**Final Answer**",
#   "Final Answer:"): the answer is the next paragraph;
_HEADING_RE = re.compile(
    r"^(?:[ \t]*(?:#{1,6}|\*\*|__))*[ \t]*(?:(?:the[ \t]+)?final[ \t]+)?answer"
    r"(?:[ \t]*(?:\*\*|__|[:：]))*[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
# - a line opening with an answer label, with or without the answer after it.
_SLOT_RE = re.compile(
    r"^(?:[ \t]*(?:#{1,6}|\*\*|__))*[ \t]*(?:(?:the[ \t]+)?final[ \t]+)?answer"
    r"(?:[ \t]*(?:\*\*|__))*[ \t]*(?:[:：]|$)",
    re.IGNORECASE | re.MULTILINE,
)
# - GSM8K's "#### 72" and few-shot "A: 72" (a line opening with "A:", unless lines "B:",
#   "C:" ... follow: then it is an option or a point, not the answer line).
_HASHES_RE = re.compile(r"####[ \t]*")
_A_LINE_RE = re.compile(r"^[ \t]*A[ \t]*:[ \t]*(?=\S)", re.MULTILINE)
_OTHER_LINE_RE = re.compile(r"^[ \t]*[B-H][ \t]*:", re.MULTILINE)
# A postfix phrase: the value comes before it ("12 is the final answer", "This gives me
# 1/4 as the final answer", "so $\boxed{5}$ is my answer").
_POSTFIX_RE = re.compile(r"\b(?:is|as|be)\s+(?:the|my|our)\s+(?:final\s+|correct\s+)?answer\b", re.IGNORECASE)
_DEMONSTRATIVE_RE = re.compile(r"(?:^|[\s,;])(?:this|that|it|which)\s*$", re.IGNORECASE)
# A closing conclusion ("Therefore, there are 12 such sequences."): read only when no
# mathematics follows it.
_CONCLUSION_RE = re.compile(
    r"(?:^|(?<=[.!?。\n$:]))[ \t*]*(?:therefore|thus|hence|so|consequently|in\s+conclusion|in\s+summary"
    r"|finally|overall|in\s+total|altogether)\b",
    re.IGNORECASE,
)
# A phrase introducing a check of the answer, not the answer ("let me verify our answer:").
_CHECKING_RE = re.compile(
    r"\b(?:check|checking|verify|verifying|confirm|confirming|double-check|test|testing|plug|plugging)"
    r"\b[^.\n]{0,20}$",
    re.IGNORECASE,
)
_TAG_OPEN_RE = re.compile(r"<answer>")
_EMPTY_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{\s*\}")
_R1_OPEN_RE = re.compile(r"</think>\s*<answer>")

# Sentence ends that close an answer fragment (a period only when not inside a number).
_SENTENCE_END_RE = re.compile(r"\n|\.(?=\s|$)|。|！|？|(?<!\\)!(?=\s|$)|\?(?=\s|$)|;\s+(?=[A-Za-z]{3})")
_QUOTES_RE = re.compile(r'^(?:\\?["“”])+|(?:\\?["“”])+(?=[.。]?$)')
# After an inline phrase: a verdict on an answer, not an answer ("my answer is correct",
# "the answer is the same either way"); the fragment commits to nothing.
_VERDICT_RE = re.compile(
    r"(?:correct|incorrect|right|wrong|reasonable|consistent|valid|invalid|plausible|verified"
    r"|confirmed|accurate|indeed|unchanged|the\s+same|not\s+(?:correct|right|valid|reasonable))\b",
    re.IGNORECASE,
)
# ... or a preposition, modal or plan: the phrase names the answer inside a sentence about
# it ("the final answer in a clear sentence", "within \boxed{}", "should be an integer",
# "Answer: Let's think step by step");
# only a value the sentence goes on to state ("... within \boxed{} is 42") is read.
_ABOUT_RE = re.compile(
    r"(?:in|within|into|to|of|for|on|at|by|with|from|as|should|must|will|would|can|could|may"
    r"|might|needs?|requires?|format|here|below|above|clearly|again|now|first|later"
    r"|let'?s|let\s+(?:us|me)|we|i(?=\s+[a-z]{2,}))\b",  # "I apologize", not the number i
    re.IGNORECASE,
)
# A fragment that opens with a value: a number, a sign, LaTeX, a bracket, or a variable
# that is assigned or compared ("x = 5").
_VALUE_START_RE = re.compile(
    r"[-+−]?\s*(?:\d|\\[A-Za-z]|\$|\(|\[|\{)|[A-Za-z](?:\s*[=<>≤≥_^(]|\s*[.,;!?]?\s*$)"
)
# "is 34", "are $12$", "equals 5": the value a prose sentence states.
_COPULA_RE = re.compile(
    r"\b(?:is|are|was|were|equals?|becomes?|gives?|yields?|gets?|obtain|makes?"
    r"|(?:increase|decrease|rise|fall|grow|drop|change)[sd]?\s+by)\s+"
    r"(?:equal\s+to\s+|exactly\s+|approximately\s+|about\s+|just\s+|only\s+|simply\s+)?"
    r"(?=[-+−]? ?(?:\d|\$|\\\(|\\\[|\\frac|\\sqrt|\\boxed|\\dfrac))",
    re.IGNORECASE,
)

# A word answer opening a fragment, then a clause break: "no, since 7 is prime" -> "no".
_WORDS = sorted({w for k, alts in TEXT_SYNONYMS.items() for w in (k, *alts)}, key=len, reverse=True)
_WORD_ANSWER_RE = re.compile(
    r"(?:(?:it\s+is|they\s+are)\s+)?(?:an?\s+)?(" + "|".join(map(re.escape, _WORDS)) + r")"
    r"(?:\s*[,;.!]|\s*$|\s+(?:because|since|as|for|so)\b)",
    re.IGNORECASE,
)

Found = tuple  # (answer: str | None, strong: bool)
_NOTHING: Found = (None, False)


def tag_content(text: str, need_think: bool) -> str | None:
    """Content of the last ``<answer>...</answer>`` (after ``</think>`` when required).

    Linear time: locate the last ``</answer>`` once, then the last opening before it (a
    lazy ``.*?`` regex would rescan the tail from every opening, quadratically)."""
    last_close = text.rfind("</answer>")
    if last_close < 0:
        return None
    opening = None
    for m in (_R1_OPEN_RE if need_think else _TAG_OPEN_RE).finditer(text, 0, last_close):
        opening = m
    if opening is None:
        return None
    return text[opening.end() : text.find("</answer>", opening.end())]


def sentence(text: str, start: int) -> str:
    """The fragment from ``start`` to the end of its sentence (math spans kept whole;
    currency dollars do not open spans)."""
    chunk = text[start : start + PHRASE_CHARS]
    spans = math_spans(chunk)
    pos = 0
    for m in _SENTENCE_END_RE.finditer(chunk):
        if not inside_spans(spans, m.start()):
            # Skip an end found right at the start ("Answer:\n5").
            if chunk[: m.start()].strip(" :：*=\t"):
                return chunk[: m.start()]
        pos = m.end()
    return chunk if not pos or chunk[pos:].strip() else chunk[:pos]


def _leading_math(rest: str) -> str | None:
    """The mathematics a fragment opens with ("34.", "2/3 of them", "2 \\times 3 = 6 cm"),
    cut at the first prose word, or None when it holds no digit and no LaTeX."""
    spans = math_spans(rest)
    if spans and not rest[: spans[0][0]].strip():
        return None if is_name(spans[0][2]) else spans[0][2]
    words = []
    for w in rest.split():
        if is_prose(w) or (w.isalpha() and len(w) > 1 and w.lower() not in MATH_WORDS):
            break
        words.append(w)
    got = " ".join(words).rstrip(" .,;:。!?")
    return got if re.search(r"\d|\\[A-Za-z]", got) else None


def _copula_value(frag: str, after: int = 0) -> str | None:
    """The value a prose sentence states after a copula (at or after ``after``): "The
    largest $n$ is 34" -> 34, "The volume of $ABCDEFGH$ is 120" -> 120 (the name before
    it is not the answer)."""
    for m in _COPULA_RE.finditer(frag, after):
        rest = frag[m.end() :]
        boxed = find_last_boxed(rest[:200]) if rest.lstrip().startswith("\\boxed") else None
        got = boxed or _leading_math(rest)
        if got:
            return got
    return None


def read_fragment(frag: str, *, marker: bool, bare: bool = False, first: bool = True) -> Found:
    """``(answer, strong)`` stated by a fragment that follows a commitment.

    ``marker``: a format marker or tags (the fragment is the answer by the format's rule);
    otherwise an inline phrase, which commits only to a value, never to a preposition or a
    verdict word. ``bare``: the phrase had no copula ("final answer in ..."), so the
    fragment must open with a value. ``first``: read the first number of prose (after a
    phrase the answer comes first) rather than the last (a short response)."""
    frag = strip_hope(frag).strip("*").strip().lstrip(":=：").strip()
    frag = _QUOTES_RE.sub("", frag).strip()  # 'The final answer is "$12$".
    if not frag.strip(" .。,;!?*:"):
        return _NOTHING
    boxed = find_last_boxed(frag)
    if boxed and boxed.strip():
        return boxed, True
    if boxed is not None:  # an empty box is the instruction echoed: it states nothing
        frag = _EMPTY_BOX_RE.sub(" ", frag).strip()
        if not frag.strip(" .。,;!?*:$"):
            return _NOTHING
    leads = bool(_VALUE_START_RE.match(frag))
    if not marker and _VERDICT_RE.match(frag):
        return _NOTHING
    if not marker and (_ABOUT_RE.match(frag) or (bare and not leads)):
        return _stated_later(frag)
    whole = strip_math_delims(frag)
    if not is_prose(DOLLAR_RE.sub(" ", whole)):
        return (DOLLAR_RE.sub("", whole).strip() or None), True
    word = _WORD_ANSWER_RE.match(frag)
    if word:
        return word.group(1), True
    return _read_prose(frag, whole, marker=marker, leads=leads, first=first)


def _stated_later(frag: str) -> Found:
    """The value a sentence about the answer goes on to state: after a colon ("the final
    answer clearly: x = 4") or a copula ("the final answer within \\boxed{} is 42")."""
    colon = re.search(r"[:：]\s*(?=\S)", frag)
    if colon and not _VERDICT_RE.match(frag[colon.end() :]):
        got = read_fragment(frag[colon.end() :], marker=False)
        if got[0]:
            return got
    stated = _copula_value(frag)
    return (stated, True) if stated else _NOTHING


def _read_prose(frag: str, whole: str, *, marker: bool, leads: bool, first: bool) -> Found:
    """The value inside a prose fragment: its math spans (names of quantities skipped),
    the value after a copula, a sentence ending on mathematics, a number, or — a word
    answer ("Monday") — the whole fragment."""
    spans = math_spans(frag)
    valued = [s for s in spans if not is_name(s[2])]
    if valued:
        # "The number of solutions of $f(x) = 0$ is 3": the span is in the subject; the
        # sentence states the value after it.
        stated = _copula_value(frag, valued[-1][1])
        if stated:
            return stated, True
    if valued:
        run = (final_run(frag, valued) or "").strip()
        if run and is_prose(run) and not ("=" in run and not is_prose(run.rsplit("=", 1)[-1])):
            # "$? just about 1$": prose inside the delimiters (a worded label before "=",
            # "$\\text{Area} = 24$", is still mathematics)
            return (first_number(run) if first else last_number(run)) or run, leads or marker
        return run or None, True
    stated = _copula_value(frag) if first else None
    if stated:
        return stated, True
    tail = math_tail(whole)
    if tail is not None:  # "We get x = 3 or x = -3." -> "x = 3 or x = -3"
        return tail, True
    number = first_number(whole) if first else last_number(whole)
    if number:
        return number, leads or marker
    if spans:  # only names: "the answer is $k$"
        return spans[-1][2], False
    return whole, marker


def _box_answer(body: str) -> str:
    """A box's answer: its content, or the word answer opening a sentence in it
    (``\\boxed{\\text{No, since } 91 = 7 \\cdot 13}`` -> No)."""
    plain = TEXT_CMD_RE.sub(lambda m: m.group(1), body).strip()
    word = _WORD_ANSWER_RE.match(plain) if is_prose(plain) else None
    return word.group(1) if word and word.end() < len(plain) else body


def _phrase_found(text: str, m: re.Match) -> Found:
    """What an inline answer phrase commits to: nothing when it introduces a check ("Let
    me verify the answer: 7 + 3 = 10"). After a bare "final answer" a dash is a separator
    ("Final answer - 12"), not a sign."""
    if _CHECKING_RE.search(text[max(0, m.start() - 40) : m.start()]):
        return _NOTHING
    bare = m.group(0).rstrip().lower().endswith("answer")
    frag = sentence(text, m.end())
    if bare:
        frag = re.sub(r"^\s*[-–—]\s+", "", frag)
    return read_fragment(frag, marker=False, bare=bare)


def _paragraph_after(text: str, end: int) -> str:
    """The paragraph after a heading line: blank lines skipped, up to the next blank line."""
    rest = text[end : end + PARAGRAPH_CHARS].lstrip("\n \t\r")
    para = re.split(r"\n[ \t]*\n", rest, maxsplit=1)[0]
    return para


def _postfix_found(text: str, m: re.Match) -> Found:
    """"12 is the final answer": the value just before the phrase (strong); "This is the
    final answer": the value of the sentence before (weak)."""
    head = text[max(0, m.start() - PHRASE_CHARS) : m.start()]
    spans = math_spans(head)
    ends = [0] + [e.end() for e in _SENTENCE_END_RE.finditer(head) if not inside_spans(spans, e.start())]
    before = head[ends[-1] :]
    got = _value_before(before)
    if got:
        return got, True
    if _DEMONSTRATIVE_RE.search(before) and len(ends) > 1:
        got = _value_before(head[ends[-2] : ends[-1]])
        if got:
            return got, False
    return _NOTHING


def _value_before(before: str) -> str | None:
    """The last value stated in ``before``: a box, a math span run, a sentence ending on
    mathematics, or a number."""
    boxed = find_last_boxed(before)
    if boxed and boxed.strip():
        return boxed
    valued = [s for s in math_spans(before) if not is_name(s[2])]
    if valued:
        return final_run(before, valued)
    return math_tail(before) or last_number(before)


def value_after_span(text: str, span_end: int) -> str | None:
    """The value the sentence of a span goes on to state ("The remainder when $2^{100}$ is
    divided by 7 is 2."), or None."""
    return _copula_value(sentence(text, span_end))


def conclusion_answer(text: str) -> str | None:
    """The value a closing "Therefore/Thus/So ..." sentence states (spans, a copula, a
    sentence ending on mathematics), when no mathematics follows it; else None."""
    last = None
    for m in _CONCLUSION_RE.finditer(text):
        last = m
    if last is None:
        return None
    frag = sentence(text, last.start())
    after = text[last.start() + len(frag) :]
    if re.search(r"\d|\$|\\\(|\\\[|\\boxed", after):
        return None
    valued = [s for s in math_spans(frag) if not is_name(s[2])]
    return final_run(frag, valued) if valued else (_copula_value(frag) or math_tail(frag))


def _candidates(text: str) -> list[tuple[int, object]]:
    """Every commitment in ``text`` as ``(position, reader)``; readers are called lazily,
    from the last position back, until one commits strongly. A box is strong, so only
    what comes after it is searched for later commitments."""
    out: list[tuple[int, object]] = []
    box = last_stated_box(text)
    start = 0
    if box is not None:
        out.append((box[0], lambda: (_box_answer(box[1]), True)))
        start = box[0] + 1
    body = tag_content(text, need_think=False)
    if body is not None and body.strip():
        pos = text.rfind("<answer>")
        out.append((pos, lambda: read_fragment(body, marker=True, first=False)))
    has_answer = "answer" in text[start:].lower()
    if has_answer:
        for m in _HEADING_RE.finditer(text, start):
            out.append((m.start(), lambda m=m: read_fragment(_paragraph_after(text, m.end()), marker=True)))
        for m in list(_POSTFIX_RE.finditer(text, start))[-MAX_PHRASES:]:
            out.append((m.start(), lambda m=m: _postfix_found(text, m)))
    if "####" in text:
        for m in _HASHES_RE.finditer(text, start):
            out.append((m.start(), lambda m=m: read_fragment(sentence(text, m.end()), marker=True)))
    if "A" in text:
        last_other = max((o.start() for o in _OTHER_LINE_RE.finditer(text, start)), default=-1)
        for m in _A_LINE_RE.finditer(text, start):
            if m.end() > last_other:
                out.append((m.start(), lambda m=m: read_fragment(sentence(text, m.end()), marker=True)))
    for m in list(PHRASE_RE.finditer(text, start))[-MAX_PHRASES:]:
        out.append((m.start(), lambda m=m: _phrase_found(text, m)))
    return out


def _answer_slot_end(text: str, start: int) -> int:
    """End of the last answer slot at a line start ("Final Answer:", "# Answer") after
    ``start``, or 0. When the slot holds no answer, the response committed to none: what
    comes before it is never read as the answer in its place."""
    end = 0
    for m in _SLOT_RE.finditer(text, start):
        end = m.end()
    return end


def committed_answer(text: str) -> tuple[str | None, int]:
    """``(answer, rest)``: the answer of the last strong commitment in ``text``, else of
    the last weak one, else None; ``rest`` is where the fallback rules may start reading
    (after an empty answer slot, else 0)."""
    weak = None
    for _, reader in sorted(_candidates(text), key=lambda c: -c[0]):
        answer, strong = reader()
        if answer is None or not answer.strip():
            continue
        if strong:
            return answer, 0
        if weak is None:
            weak = answer
    if weak is not None:
        return weak, 0
    box = last_stated_box(text)
    return None, _answer_slot_end(text, box[0] if box else 0)
