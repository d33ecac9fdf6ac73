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
    "\x00": "",
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))

# Macros that only change typesetting. Order matters: longer names first.
_DROP_RE = re.compile(
    r"\\(?:displaystyle|textstyle|left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg"
    r"|Bigg|qquad|quad|limits)(?![A-Za-z])|\\[!,;: ]|~"
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
    r"|calories|people|persons|students|ways|sq)"
)
# A unit after a number: either in a \text{} wrapper (any words) or as a bare word from
# the list above, separated by a space so that "5m" (5 times m) is not touched.
_UNIT_TEXT_RE = re.compile(r"(?<=[\d}).])\s*\\(?:text|mbox|mathrm|textrm|textbf|textit)\s*\{\s*[A-Za-z][A-Za-z .]*\}(\^\{?[23]\}?)?\s*$")
_UNIT_WORD_RE = re.compile(r"(?<=[\d}).])\s+" + _UNIT_WORDS + r"(\^\{?[23]\}?)?\.?\s*$", re.IGNORECASE)
_PERCENT_WORD_RE = re.compile(r"(?<=[\d}])\s*(?:percent(?:age)?|pct)\.?\s*$", re.IGNORECASE)
_DOLLAR_RE = re.compile(r"\\\$|\\textdollar|\$")
_SPACES_RE = re.compile(r"\s+")


def _unwrap_text(s: str) -> str:
    """Replace ``\\text{abc}`` by ``abc`` (a few rounds for ``\\text{\\textbf{..}}``)."""
    for _ in range(4):
        new = _TEXT_RE.sub(lambda m: m.group(1), s)
        if new == s:
            break
        s = new
    return s


def strip_units(s: str) -> str:
    """Drop a trailing unit after a number: ``5\\text{ cm}^2`` -> ``5``, ``12 inches`` -> ``12``."""
    s = _UNIT_TEXT_RE.sub("", s)
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
    s = _DROP_RE.sub(" ", s)
    s = _FRAC_RE.sub(r"\\frac", s)
    s = s.replace("\\dbinom", "\\binom").replace("{,}", ",")
    s = s.replace("\\%", "%").replace("\\le ", "\\leq ").replace("\\ge ", "\\geq ")
    s = _DOLLAR_RE.sub("", s)
    s = _DEGREE_RE.sub("", s)
    s = _SPACES_RE.sub(" ", s).strip()
    s = _strip_punctuation(s)
    s = _PERCENT_WORD_RE.sub("%", s)
    s = strip_units(s)
    s = _unwrap_text(s)
    s = _strip_punctuation(_SPACES_RE.sub(" ", s).strip())
    s = s.replace("+\\infty", "\\infty").replace("\\inf ", "\\infty ")
    if s.endswith("\\inf"):
        s += "ty"
    return s


def squash(s: str) -> str:
    """``clean`` output without any whitespace, for exact comparisons of math strings."""
    return _SPACES_RE.sub("", s)
