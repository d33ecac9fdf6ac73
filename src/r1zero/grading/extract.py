"""Answer extraction from model text (and from gold answers) in three named modes.

* ``boxed`` — the paper's reward: the last ``\\boxed{}``/``\\fbox{}`` (brace-matched). A
  final *run* of boxes separated only by commas, ``and``/``or``, ``\\quad`` or math
  delimiters (``\\boxed{3}, \\boxed{5}``) is one collection, ``3, 5``: a hedge of several
  boxes is then graded as the list it is, never as its last item.
* ``r1`` — the R1 template's contract: the content of ``<answer>...</answer>`` right after
  ``</think>`` (a box inside the tags wins). No tags, no answer (``format_error``).
* ``auto`` — how people read an answer, for ``r1zero grade`` and analysis. First rule
  that yields something wins:

  1. a box (as in ``boxed``; an empty box, the instruction echoed, is skipped);
  2. ``<answer>`` tags (with or without ``</think>``);
  3. the last answer phrase — "final answer", "the answer is", "Answer:", ``####``, and
     their French, Spanish, Portuguese, Italian, German, Dutch, Russian, Chinese,
     Japanese, Korean, Arabic, Hindi, Turkish, Vietnamese and Indonesian forms — and the
     fragment that follows it up to the end of its sentence;
  4. a short response (at most ``SHORT_CHARS``) taken whole;
  5. the last LaTeX math span (``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``), or a final
     run of spans joined by separators;
  6. the last number (integers, decimals, thousands groups, ``a/b``, ``\\frac{a}{b}``).

  A fragment from rules 2-4 is itself read the same way: a box in it, else the whole
  fragment when it is mathematics (no prose words), else its math spans, else — prose
  around an answer, "Respuesta: son 45 €" — its last number; a wordy answer with no
  number ("Monday") stays whole.

  When the gold is a choice letter (``B``, ``(B)``, ``\\text{B}``) ``auto`` reads a letter:
  the one in a box or tags, else the first letter after the last answer phrase, else the
  first (short response) or last (long one) standalone letter; letters right after a
  negation ("not", "pas", "nicht", "不是", "не", ...) and the article "A" are skipped.

Gold answers go through :func:`extract_gold`: the same machinery (delimiters, its own
box, a worked solution reduced to its final answer), except that a short gold is always
taken whole, so ``5, 7`` stays a list and is never cut down to its last number.

Everything here is linear-time scanning over a bounded tail of the text, so a megabyte
of adversarial output costs microseconds, never a regex catastrophe.
"""

from __future__ import annotations

import functools
import re

# Only the tail of a huge response is searched: the final answer lives at the end, and the
# bound keeps brace matching and regexes O(TAIL_CHARS) whatever the model emits.
TAIL_CHARS = 16_384
# A boxed body longer than this is not an answer but a runaway (or an attack); we stop
# scanning there and report it as too long rather than spend time on it.
MAX_SCAN_CHARS = 4_096
# A response (or fragment) this short is read whole in ``auto`` mode: "-7", "2 500",
# "$(2,4]$", "x = 5 cm". Longer text is a solution, read for its final answer.
SHORT_CHARS = 80
# How far after an answer phrase the answer may run (one sentence, bounded).
PHRASE_CHARS = 300
EXTRACT_MODES = ("boxed", "r1", "auto")

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_R1_OPEN_RE = re.compile(r"</think>\s*<answer>")
_TAG_OPEN_RE = re.compile(r"<answer>")
# What may sit between the items of one answer written as several boxes or math spans:
# commas, semicolons, "and"/"or" (also as \text{}), \quad, line breaks, math delimiters,
# and a short label before the next item ("x = \boxed{3}, y = \boxed{5}").
_SEP_WORDS = r"and|or|et|ou|y|o|und|oder|e|и|или|和|或|以及"
_RUN_GAP_RE = re.compile(
    r"^(?:\s|[,;&$]|\\[(\[\])]|\\\\|\\q?quad(?![A-Za-z])|\\[,;:! ]|~"
    rf"|\\(?:text|textbf|textrm|mathrm|mbox)\s*\{{\s*(?:{_SEP_WORDS}|,)?\s*\}}"
    rf"|(?<![^\W\d_])(?:{_SEP_WORDS})(?![^\W\d_]))*"
    r"(?:(?:[A-Za-z](?:_\{?\w+\}?)?|\([A-Za-z](?:,\s*[A-Za-z])*\))\s*=\s*)?$"
    # or one word naming what the previous item counts: "\boxed{1} papers and \boxed{2} bins"
    r"|^\s*[A-Za-z]{1,12}\s*(?:,|and)\s*$",
    re.IGNORECASE,
)
_LABEL_RE = re.compile(r"((?:[A-Za-z](?:_\{?\w+\}?)?|\([A-Za-z](?:,\s*[A-Za-z])*\)))\s*=\s*$")

# Answer phrases; the answer is what follows the last one. Ordered longest first within a
# language so that "the final answer is" wins over "answer is" at the same position.
_PHRASES = [
    # English (incl. lm-eval's "Final Answer: The final answer is X. I hope it is correct.")
    r"(?:the\s+)?final\s+answer\s*(?:is|:|=)?", r"(?:the\s+)?(?:correct\s+)?answer\s+(?:is|would\s+be|should\s+be|will\s+be)",
    r"(?:the\s+)?correct\s+(?:option|choice)\s+is", r"answer\s*[:=]", r"####",
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
_PHRASE_RE = re.compile("|".join(f"(?:{p})" for p in _PHRASES), re.IGNORECASE)
# Sentence ends that close an answer fragment (a period only when not inside a number).
_SENTENCE_END_RE = re.compile(r"\n|\.(?=\s|$)|。|！|？|(?<!\\)!(?=\s|$)|\?(?=\s|$)|;\s+(?=[A-Za-z]{3})")
_DOLLAR_RE = re.compile(r"(?<!\\)\$")  # a math delimiter; "\\$" is a dollar sign
_ENV_RE = re.compile(r"\\(?:begin|end)\s*\{[^{}]*\}(?:\{[lcr|]*\})?")
# Between the parts of one quantity: a unit word, then "and" ("3 hours and 20 minutes").
_COMPOUND_GAP_RE = re.compile(rf"^\s*[^\W\d_]+\s+(?:{_SEP_WORDS})\s+$", re.IGNORECASE)
_HOPE_RE = re.compile(r"\s*I\s+hope\s+it\s+is\s+correct\.?\s*$", re.IGNORECASE)

# Math spans: $$..$$, $..$, \(..\), \[..\] (non-greedy; bodies bounded).
_SPAN_RE = re.compile(
    r"\$\$(.{1,2000}?)\$\$|(?<![\\$])\$(?!\$)(.{1,2000}?)(?<!\\)\$|\\\((.{1,2000}?)\\\)|\\\[(.{1,2000}?)\\\]",
    re.DOTALL,
)
# One number as people write it: sign, digits with thousands groups (comma, space, thin
# space), a decimal part (point or comma), a/b, \frac{a}{b}, a trailing percent.
_NUMBER_RE = re.compile(
    r"-?\\[dt]?frac\{-?\d+\}\{\d+\}"
    r"|(?<![A-Za-z0-9_.])-?(?:\d{1,3}(?:(?:,|\\,|\s)\d{3})+(?![\d])|\d+)(?:[.,]\d+(?![\d,]))?(?:\s*/\s*\d+(?![\d.]))?\s*(?:\\?%)?"
)
# Prose: words that are not mathematics. Units, separators and function names are math.
_WORD_RE = re.compile(r"[^\W\d_]{2,}")
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uff01-\uff60]")
_MATH_WORDS = frozenset(
    """and or sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh log ln lg exp max min
    gcd lcm mod det deg dim ker inf sup lim pi cm mm km kg mg ml in ft yd mi mph hr hrs min
    sec sq units unit meters metres meter degrees degree radians dollars cents pm am
    no yes""".split()
)
_STOP_2 = frozenset("is to of it be so we an as at by if on no my he me us up do go".split())
# \text-like wrappers (and their content) and other commands, removed before the prose test.
_COMMAND_RE = re.compile(r"\\[A-Za-z]+")
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textit|textrm|textnormal|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")

# Choice letters.
_GOLD_CHOICE_RE = re.compile(r"^\(?([A-J])\)?[.:]?$")
# A gold that is an option with its text: "(D) Alina", "C) 12", "B. 3/4".
_GOLD_OPTION_RE = re.compile(r"^\(([A-J])\)\s+\S|^([A-J])[).:]\s+\S")
_NEGATION_RE = re.compile(
    r"(?:\bnot|\bcannot|n't|\bno|\bnon|\bpas|\bnicht|\bkein\w*|\bnão|\bnon è|不是|不|非|\bне|\bнет|아니)"
    r"(?:\s+(?:be|the\s+answer|option|choice|answer|la\s+réponse|c'est|es|è|ist|option))?[\s:,(*]*$",
    re.IGNORECASE,
)


# Between two letters of one negated list: "not C or D", "ni C ni D", "不是C或D".
_LETTER_CHAIN_RE = re.compile(r"^[\s,*()]*(?:or|and|nor|ni|ou|o|oder|noch|или|и|或|和|、)?[\s,*()]*$", re.IGNORECASE)


class AnswerTooLong(ValueError):
    """Raised by :func:`find_last_boxed` when the boxed body exceeds ``MAX_SCAN_CHARS``."""


def _tail(text: str) -> str:
    """The last ``TAIL_CHARS`` characters, without NUL bytes (never part of an answer)."""
    return text[-TAIL_CHARS:].replace("\x00", "")


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


def _final_run(text: str, spans: list[tuple[int, int, str]]) -> str | None:
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


def _boxes(text: str) -> list[tuple[int, int, str]]:
    """All complete boxes as (start, end, content); None when the *last* box is unclosed
    (a truncated answer must not fall back to an earlier, intermediate box)."""
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
    return _final_run(text, _boxes(text))


def _strip_math_delims(s: str) -> str:
    """Remove surrounding ``$``/``$$``/``\\(``/``\\[`` delimiters, bold markers and space."""
    s = s.strip().strip("*").strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
            inner = s[len(left) : len(s) - len(right)]
            if left == "$" and "$" in inner:
                return s  # "$5$ and $7$": two spans, not one
            return inner.strip()
    return s


def _is_prose(s: str) -> bool:
    """True when ``s`` holds words that are not mathematics: any CJK character, or a word
    of three or more letters (two for common English words) outside LaTeX commands that
    is not a unit, separator or function name. ``\\text{Monday}`` is prose; ``x = 5 cm``,
    ``PQ = 7`` and ``3 \\text{ or } 5`` are not."""
    if _CJK_RE.search(s):
        return True
    s = _TEXT_CMD_RE.sub(lambda m: " " + m.group(1) + " ", _ENV_RE.sub(" ", s))
    s = _COMMAND_RE.sub(" ", s)
    for w in _WORD_RE.findall(s):
        low = w.lower()
        if low in _MATH_WORDS:
            continue
        if len(w) >= 3 or low in _STOP_2:
            return True
    return False


def is_text_answer(answer: str) -> bool:
    """True when an answer is words rather than mathematics (``Monday``, ``\\text{the
    second}``, ``五``, ``12 apples``), by the same prose test ``auto`` extraction uses;
    math delimiters are ignored. ``x = 5 cm``, ``3 \\text{ or } 5``, ``B``, ``yes`` are math."""
    return _is_prose(_DOLLAR_RE.sub(" ", _strip_math_delims(answer)))


def _spans(text: str) -> list[tuple[int, int, str]]:
    """Math spans as (start, end, body), in order."""
    out = []
    for m in _SPAN_RE.finditer(text):
        body = next(g for g in m.groups() if g is not None)
        if body.strip():
            out.append((m.start(), m.end(), body.strip()))
    return out


def last_number(text: str) -> str | None:
    """The last number in ``text`` as written (``\\frac{7}{3}`` and ``5/12`` whole)."""
    found = _NUMBER_RE.findall(text)
    return found[-1].strip() if found else None


def first_number(text: str) -> str | None:
    """The first number in ``text`` that is not negated ("12, nicht 13" -> 12; "not 12
    but 13" -> 13): after an answer phrase, the answer comes first. None when it is the
    first part of a compound quantity ("3 hours and 20 minutes", "5 apples and 3 pears"):
    no single number is the answer there."""
    found = [m for m in _NUMBER_RE.finditer(text) if not _negated(text, m.start())]
    if not found:
        return None
    if len(found) > 1 and _COMPOUND_GAP_RE.match(text[found[0].end() : found[1].start()]):
        return None
    return found[0].group(0).strip()


def _from_fragment(frag: str, after_phrase: bool = False) -> str | None:
    """The answer inside a fragment (after a phrase, in tags, or a short response)."""
    frag = _HOPE_RE.sub("", frag).strip().strip("*").strip()
    frag = frag.lstrip(":=：").strip()
    if not frag:
        return None
    boxed = find_last_boxed(frag)
    if boxed:
        return boxed
    whole = _strip_math_delims(frag)
    if not _is_prose(_DOLLAR_RE.sub(" ", whole)):
        return _DOLLAR_RE.sub("", whole).strip() or None
    spans = _spans(frag)
    if spans:
        run = (_final_run(frag, spans) or "").strip()
        if run and _is_prose(run):  # "$? just about 1$": prose inside the delimiters
            return (first_number(run) if after_phrase else last_number(run)) or run
        return run or None
    tail = _math_tail(whole)
    if tail is not None:  # "We get x = 3 or x = -3." -> "x = 3 or x = -3"
        return tail
    return (first_number(whole) if after_phrase else last_number(whole)) or whole


def _math_tail(text: str) -> str | None:
    """The longest run of words at the end of a prose fragment that is mathematics and
    more than one number (``x = 3 or x = -3``, ``47 + 85 = 132``), else None."""
    words = text.rstrip(" .。!?").split()
    best = None
    for k in range(len(words) - 1, -1, -1):
        w = words[k]
        if _is_prose(w) or (w.isalpha() and len(w) > 1 and w.lower() not in _MATH_WORDS):
            break  # a word ("es", "we") ends the run, whichever language it is in
        best = " ".join(words[k:])
    best = best.lstrip("=:：").strip() if best else None
    if not best or not re.search(r"\d", best) or _NUMBER_RE.fullmatch(best):
        return None
    return best if re.search(r"[=<>+*/^]|\\|[A-Za-z]|,", best) else None


def _sentence(text: str, start: int) -> str:
    """The fragment from ``start`` to the end of its sentence (math spans kept whole)."""
    chunk = text[start : start + PHRASE_CHARS]
    pos = 0
    for m in _SENTENCE_END_RE.finditer(chunk):
        # A sentence end inside a math span does not end the sentence.
        if len(_DOLLAR_RE.findall(chunk, 0, m.start())) % 2 == 0 and chunk.count("\\(", 0, m.start()) == chunk.count("\\)", 0, m.start()):
            # Skip an end found right at the start ("Answer:\n5").
            if chunk[: m.start()].strip(" :：*=\t"):
                return chunk[: m.start()]
        pos = m.end()
    return chunk if not pos or chunk[pos:].strip() else chunk[:pos]


def _after_phrase(text: str) -> str | None:
    """The fragment after the last answer phrase that is followed by something."""
    matches = list(_PHRASE_RE.finditer(text))
    for m in reversed(matches):
        frag = _sentence(text, m.end())
        if frag.strip(" :：*=\t\n"):
            return frag
    return None


def _tag_content(text: str, need_think: bool) -> str | None:
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


def extract_r1(text: str) -> str | None:
    """Answer of an R1-format response: inside ``<answer>...</answer>`` right after
    ``</think>``; a box inside the tags wins. None when the tags are missing."""
    body = _tag_content(text, need_think=True)
    if body is None:
        return None
    boxed = find_last_boxed(body)
    return boxed if boxed is not None else _strip_math_delims(body)


def extract_auto(text: str) -> str | None:
    """The ``auto`` rules 1-6 of the module docstring, in order."""
    boxed = find_last_boxed(text)
    if boxed and boxed.strip():
        return boxed
    tagged = _tag_content(text, need_think=False)
    if tagged is not None and tagged.strip():
        return _from_fragment(tagged)
    frag = _after_phrase(text)
    if frag is not None:
        got = _from_fragment(frag, after_phrase=True)
        if got:
            return got
    stripped = text.strip()
    if len(stripped) <= SHORT_CHARS:
        return _from_fragment(stripped)
    spans = _spans(text)
    if spans:
        return _final_run(text, spans)
    return last_number(text)


# ----------------------------------------------------------------------------- choices
def gold_choice(gold: str) -> str | None:
    """The letter when a gold answer is a multiple-choice letter (``B``, ``(B)``,
    ``\\text{B}``, ``$\\textbf{(B)}$``), else None."""
    s = _TEXT_CMD_RE.sub(lambda m: m.group(1), _strip_math_delims(gold)).strip().strip("*")
    m = _GOLD_CHOICE_RE.match(s.replace(" ", "")) or _GOLD_OPTION_RE.match(s)
    return next((g for g in m.groups() if g), None) if m else None


def _negated(text: str, start: int) -> bool:
    """True when a negation ("not", "pas", "nicht", "不是", "не", ...) stands right before
    ``text[start]``."""
    return bool(_NEGATION_RE.search(text[max(0, start - 24) : start]))


def _letters(text: str, top: str) -> list[str]:
    """Standalone choice letters A..``top`` in ``text``, without the negated ones ("not B",
    "pas B", "不是 D", and C *and* D in "it can't be C or D") and without the English
    article ("A good guess")."""
    out: list[str] = []
    prev_end, prev_negated = -1, False
    for m in re.finditer(rf"(?<![A-Za-z0-9_\\])([A-{top}])(?![A-Za-z0-9_])", text):
        letter = m.group(1)
        if letter == "A" and re.match(r"\s+[a-z]", text[m.end() : m.end() + 3]):
            continue
        gap = text[prev_end : m.start()] if prev_end >= 0 else ""
        chained = prev_negated and bool(_LETTER_CHAIN_RE.match(gap))
        prev_end, prev_negated = m.end(), chained or _negated(text, m.start())
        if not prev_negated:
            out.append(letter)
    return out


def _one_letter(found: list[str]) -> str | None:
    """The letter when exactly one distinct letter was named, else None (a hedge)."""
    return found[0] if len(set(found)) == 1 else None


def extract_choice(text: str, top: str = "E") -> str | None:
    """The chosen letter A..``top`` in ``text`` (rules in the module docstring). A box or a
    short response naming several letters ("B or C") is a hedge: it is returned whole and
    graded wrong."""
    for inner in (find_last_boxed(text), _tag_content(text, need_think=False)):
        if inner and inner.strip():
            # A box holds the letter ("(C)", "\\text{C}", "C) 12") or a sentence naming
            # it; anything else ("(C)+1") is graded as written, i.e. wrong.
            letter = gold_choice(inner)
            if letter is not None:
                return letter
            plain = _TEXT_CMD_RE.sub(lambda m: m.group(1), inner)
            return (_one_letter(_letters(plain, top)) if _is_prose(plain) else None) or inner
    lead = re.match(rf"^\s*[*(]*([A-{top}])[*]*[).:]", text)
    if lead:  # "D. It cannot be A or B": a letter opening the response, then a stop
        return lead.group(1)
    frag = _after_phrase(text)
    if frag is not None:
        found = _letters(frag, top)
        if found:
            return found[0]
    found = _letters(text, top)
    if not found:
        return None
    if len(text.strip()) <= SHORT_CHARS:
        return _one_letter(found) or text.strip()
    return found[-1]


# ----------------------------------------------------------------------------- entry points
def extract_with_reason(
    response: str, *, mode: str = "boxed", choice: str | None = None
) -> tuple[str | None, str | None]:
    """``(answer, None)`` on success, else ``(None, reason)`` with reason one of
    ``no_answer``, ``format_error`` (r1 tags missing), ``too_long`` (runaway box).

    ``choice``: the gold's letter when it is a multiple-choice letter (``auto`` then reads
    a letter, see :func:`extract_choice`)."""
    text = _tail(response)
    try:
        if mode == "r1":
            ans = extract_r1(text)
            return (ans, None) if ans is not None else (None, "format_error")
        if mode == "auto":
            top = "E" if choice is None or choice <= "E" else "J"
            ans = extract_choice(text, top) if choice is not None else extract_auto(text)
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
    text = _tail(gold).strip()
    try:
        boxed = find_last_boxed(text)
    except AnswerTooLong:
        return gold
    if boxed and boxed.strip():
        return boxed
    if len(text) <= SHORT_CHARS * 2 and "\n" not in text and not _PHRASE_RE.search(text):
        inner = _strip_math_delims(text)
        return _DOLLAR_RE.sub(" ", inner).strip() if _DOLLAR_RE.search(inner) else inner
    try:
        return extract_auto(text) or gold
    except AnswerTooLong:
        return gold
