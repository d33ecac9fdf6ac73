"""String normalisation of extracted answers: one canonical spelling per answer before
any comparison, so that cosmetic LaTeX differences never reach sympy.

Each rule removes notation that cannot change the value (spacing macros, ``\\left``,
``\\dfrac``, ``$``, units after a number, degree signs, ``\\text{}`` wrappers, a trailing
period). Rules that *could* change the value (thousands separators, ``x =`` prefixes)
are deliberately narrow and live in :mod:`r1zero.grading.fastpath` where the structure
is known.
"""

from __future__ import annotations

import re

from .notation import degrees_in_trig, rewrite

# Unicode look-alikes models emit (often copied from web text) -> LaTeX/ASCII spelling.
_UNICODE = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",  # en dash, used as minus
    "\u00d7": "\\times ",
    "\u22c5": "\\cdot ",
    "\u00b7": "\\cdot ",
    "\u00f7": "\\div ",
    "\u221a": "\\sqrt",
    "\u03c0": "\\pi ",
    "\u221e": "\\infty ",
    "\u00b0": "^\\circ",
    "\u2264": "\\leq ",
    "\u2265": "\\geq ",
    "\u2260": "\\neq ",
    "\u00a0": " ",
    "\uff0c": ",",
    "\u222a": "\\cup ",
    "\u00b2": "^2",  # m², cm³
    "\u00b3": "^3",
    "\x00": "",
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))

# Macros that only change typesetting. Order matters: longer names first.
_DROP_RE = re.compile(
    r"\\(?:displaystyle|textstyle|left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg"
    r"|Bigg|limits)(?![A-Za-z])|(?<!\\)\\[,;: ]|~"
)
_FRAC_RE = re.compile(r"\\[dtc]frac(?![A-Za-z])")
_DEGREE_RE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ\s*$|\\degree(?![A-Za-z])")
# \text-like wrappers whose argument is plain text (no nested braces).
_TEXT_RE = re.compile(
    r"\\(?:text|textbf|textit|textrm|textnormal|mathrm|mathbf|mathit|mbox|rm|bf|operatorname)"
    r"\s*\{([^{}]*)\}"
)
_UNIT_WORDS = (
    r"(?:square|sq\.?|cubic)?\s*(?:units?|cm|mm|km|m|meters?|metres?|centimeters?|millimeters?"
    r"|kilometers?|inch(?:es)?|in|feet|foot|ft|yards?|yd|miles?|mi|mph|kg|g|grams?|kilograms?"
    r"|pounds?|lbs?|ounces?|oz|seconds?|secs?|s|minutes?|mins?|hours?|hrs?|h|days?|weeks?"
    r"|months?|years?|degrees?|deg|radians?|rad|dollars?|cents?|liters?|litres?|l|ml|gallons?"
    r"|calories|people|persons|students|ways|sq"
    # Cyrillic units, as Russian answers write them ("3,5 см")
    r"|см|мм|км|м|кг|г|л|мл|с|мин|ч|руб|р)"
)
# A unit after a number: either in a \text{} wrapper (any words) or as a bare word from
# the list above, separated by a space so that "5m" (5 times m) is not touched.
_UNIT_TEXT_RE = re.compile(r"(?<=[\d}).])\s*\\(?:text|textnormal|mbox|mathrm|textrm|textbf|textit)\s*\{\s*[A-Za-z][A-Za-z .]*\}(\^\{?[23]\}?)?\s*$")
_UNIT_WORD_RE = re.compile(r"(?<=[\d}).])\s+" + _UNIT_WORDS + r"(\^\{?[23]\}?)?\.?\s*$", re.IGNORECASE)
_PERCENT_WORD_RE = re.compile(r"(?<=[\d}])\s*(?:percent(?:age)?|pct)\.?\s*$", re.IGNORECASE)
_DOLLAR_RE = re.compile(r"\\\$|\\textdollar|\$|€|£|¥|\\euro(?![A-Za-z])|\\pounds(?![A-Za-z])")
# \quad at either end is spacing; between two items it separates them (fastpath lists).
_EDGE_QUAD_RE = re.compile(r"^(?:\s*\\q?quad(?![A-Za-z]))+|(?:\\q?quad(?![A-Za-z])\s*)+$")
# "\\frac" from a doubly escaped string: a doubled backslash before a command name.
_DOUBLE_BACKSLASH_RE = re.compile(r"(?<!\\)\\\\(?=[A-Za-z]{2,})")
# Commands whose arguments may be written without braces: \sqrt 3, \frac23, \frac{\sqrt3}2.
_ARITY = {"frac": 2, "sqrt": 1, "binom": 2}
_SHORT_ARG_RE = re.compile(r"\\(frac|sqrt|binom)(?![A-Za-z])")
_SPACES_RE = re.compile(r"\s+")
# One spelling for the empty set and for the real line (an interval is what fastpath reads).
_EMPTY_RE = re.compile(r"^(?:\\varnothing|\\emptyset|\\\{\s*\\\}|\{\s*\}|∅)$")
_REALS_RE = re.compile(
    r"^(?:\\mathbb\s*\{?R\}?|ℝ|\\R|\\text\{\s*all real numbers\s*\}|all real numbers"
    r"|\(\s*-\s*\\infty\s*,\s*\+?\s*\\infty\s*\))$", re.IGNORECASE)


def _brace_args(s: str) -> str:
    """``\\sqrt 3`` -> ``\\sqrt{3}``, ``\\frac23`` -> ``\\frac{2}{3}``, ``\\frac{a}2`` ->
    ``\\frac{a}{2}``: an unbraced argument is one character (or one command), as in TeX,
    so ``\\sqrt 12`` is ``\\sqrt{1}2`` and ``\\frac23i`` is ``\\frac{2}{3}i``."""
    out, i = [], 0
    for m in _SHORT_ARG_RE.finditer(s):
        if m.start() < i:
            continue
        out.append(s[i : m.end()])
        j = m.end()
        if m.group(1) == "sqrt" and s[j : j + 1] == "[":  # \sqrt[3]{x}: leave it as is
            i = j
            continue
        for _ in range(_ARITY[m.group(1)]):
            while j < len(s) and s[j] == " ":
                j += 1
            if j >= len(s):
                break
            if s[j] == "{":
                depth, k = 0, j
                while k < len(s):
                    depth += {"{": 1, "}": -1}.get(s[k], 0)
                    if depth == 0:
                        break
                    k += 1
                out.append("{" + _brace_args(s[j + 1 : k]) + "}")
                j = k + 1
            else:
                cmd = re.match(r"\\[A-Za-z]+", s[j:])
                arg = cmd.group(0) if cmd else s[j]
                out.append("{" + arg + "}")
                j += len(arg)
        i = j
    out.append(s[i:])
    return "".join(out)


def _unwrap_text(s: str) -> str:
    """Replace ``\\text{abc}`` by ``abc`` (a few rounds for ``\\text{\\textbf{..}}``)."""
    for _ in range(4):
        new = _TEXT_RE.sub(lambda m: m.group(1), s)
        if new == s:
            break
        s = new
    return s


# A unit glued to the number only when it carries a power ("12m^2", "3cm^3"): "5m" alone
# could be 5 times m.
_UNIT_POWER_RE = re.compile(r"(?<=\d)\s*(?:mm|cm|km|m|in|ft|yd)\^\{?[23]\}?\s*$")


def strip_units(s: str) -> str:
    """Drop a trailing unit after a number: ``5\\text{ cm}^2`` -> ``5``, ``12 inches`` -> ``12``."""
    s = _UNIT_POWER_RE.sub("", _UNIT_TEXT_RE.sub("", s))
    return _UNIT_WORD_RE.sub("", s)


def _strip_punctuation(s: str) -> str:
    """Drop sentence-final ``.``/``;``/``,``: punctuation, never part of the value ("5."
    and "x." are common in boxed answers copied from prose)."""
    while s and s[-1] in ".;," and not s.endswith("\\."):
        s = s[:-1].rstrip()
    return s


def clean(answer: str) -> str:
    """Canonical spelling of one extracted answer (value-preserving rewrites only)."""
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], answer)
    if "\\begin" not in s:  # inside a matrix "\\\\" separates rows
        s = _DOUBLE_BACKSLASH_RE.sub(r"\\", s)
    # ",\\!" is the LaTeX thousands idiom ("11,\\! 111" is 11111); "\\!" alone is a
    # negative thin space.
    s = re.sub(r",\\!\s*", ",", s).replace("\\!", "")
    s = _DROP_RE.sub(" ", s)
    s = _brace_args(_FRAC_RE.sub(r"\\frac", s))
    s = s.replace("\\dbinom", "\\binom").replace("\\tbinom", "\\binom").replace("{,}", ",")
    s = s.replace("\\%", "%").replace("\\le ", "\\leq ").replace("\\ge ", "\\geq ")
    s = _DOLLAR_RE.sub("", s)
    s = _DEGREE_RE.sub("", degrees_in_trig(s))
    s = _SPACES_RE.sub(" ", s).strip()
    s = _strip_punctuation(s)
    s = _PERCENT_WORD_RE.sub("%", s)
    s = strip_units(s)
    s = rewrite(_unwrap_text(s))  # counting notation, pi, ordinals, count words, qualifiers
    s = _strip_punctuation(_EDGE_QUAD_RE.sub("", _SPACES_RE.sub(" ", s).strip()).strip())
    s = s.replace("+\\infty", "\\infty").replace("\\inf ", "\\infty ")
    if s.endswith("\\inf"):
        s += "ty"
    if _EMPTY_RE.match(s):
        return "\\emptyset"
    if _REALS_RE.match(s):
        return "(-\\infty,\\infty)"
    return s


def squash(s: str) -> str:
    """``clean`` output without any whitespace, for exact comparisons of math strings. A
    space between two digits is kept (as a thin space): ``1 2`` is not ``12``."""
    return _SPACES_RE.sub("", re.sub(r"(?<=\d)\s+(?=\d)", "\u2009", s))
