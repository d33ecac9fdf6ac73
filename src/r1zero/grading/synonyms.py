"""Text answers: a small table of wordings that state the same answer, and the canonical
wording two text answers are compared in.

The table is deliberately short: only wordings whose meaning does not depend on the
question (``irrational`` and ``not a rational number``), never a paraphrase a judge would
have to weigh ("every sufficiently large number appears" vs "all numbers large enough
appear": that is the LLM judge's job, docs/grading.md). Each row is tested both ways.
"""

from __future__ import annotations

import re

# canonical wording -> other wordings of the same answer (compared lower-cased, articles
# and a leading "it is" / "they are" dropped, see ``canonical_text``).
TEXT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "irrational": ("not rational", "not a rational number", "irrational number", "not a rational"),
    "rational": ("rational number",),
    "yes": ("true", "possible", "yes it is", "it is possible"),
    "no": ("false", "impossible", "not possible", "no it is not"),
    "infinitely many": ("infinite", "infinitely many solutions", "infinitely many of them", "infinity many"),
    "does not exist": ("dne", "doesn't exist", "not exist", "no such number exists", "no such number"),
    "even": ("even number", "an even integer", "even integer"),
    "odd": ("odd number", "odd integer"),
    "prime": ("prime number",),
    "composite": ("composite number",),
}
_LOOKUP = {alt: key for key, alts in TEXT_SYNONYMS.items() for alt in (key, *alts)}
_LEAD_RE = re.compile(r"^(?:(?:it|this|that|the answer|they)\s+(?:is|are)\s+)?(?:an?|the)\s+|^(?:it|this|that|they)\s+(?:is|are)\s+")


def canonical_text(words: str) -> str:
    """One wording per answer: lower-cased, single-spaced, without a leading article or
    "it is", and mapped through ``TEXT_SYNONYMS``."""
    s = " ".join(words.lower().replace("’", "'").split()).strip(" .!")
    s = _LEAD_RE.sub("", s, count=1)
    return _LOOKUP.get(s, s)
