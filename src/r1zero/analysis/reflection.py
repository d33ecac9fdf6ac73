"""Self-reflection detection by keywords, and the statistics built on it.

Pure functions (no I/O): the trainer imports this module to log ``rollout/reflection_rate``,
so its API is stable. Keywords follow the pilot study *There May Not be Aha Moment in
R1-Zero-like Training* and *Understanding R1-Zero-Like Training* (Liu et al., 2025).

Two rates that are easily confused, kept apart by name everywhere in r1zero:

* **response-level rate**: share of all responses that contain a keyword;
* **question-level rate**: share of questions with at least one such response among
  its k samples. It grows with k, so always report k with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PILOT_KEYWORDS: list[str] = [
    "recheck", "rethink", "reevaluate", "re-evaluate", "reevaluation", "re-examine",
    "reexamine", "try again", "check again", "think again", "go over the steps",
]
"""The pilot study's keyword list, verbatim."""

PAPER_KEYWORDS: list[str] = PILOT_KEYWORDS + [
    "reassess", "reconsider", "reanalyze", "double-check", "verify again",
]
"""The paper's list: the pilot list plus its five additions."""

DEFAULT_KEYWORDS: tuple[str, ...] = tuple(PAPER_KEYWORDS)
"""What r1zero uses unless told otherwise (the more complete, paper list)."""

KEYWORD_LISTS: dict[str, list[str]] = {"pilot": PILOT_KEYWORDS, "paper": PAPER_KEYWORDS}


def reflection_hits(text: str, keywords: Iterable[str] = DEFAULT_KEYWORDS) -> dict[str, int]:
    """Occurrences of every keyword in ``text`` (lower-cased, non-overlapping substring
    counts; 0 for absent keywords, so the keys are always the keyword list). Substring
    matching is deliberate, as in the papers: "rechecking" counts as "recheck"."""
    low = text.lower()
    return {k: low.count(k.lower()) for k in keywords}


def has_reflection(text: str, keywords: Iterable[str] = DEFAULT_KEYWORDS) -> bool:
    """True if ``text`` contains at least one keyword (case-insensitive)."""
    low = text.lower()
    return any(k.lower() in low for k in keywords)


def resolve_keywords(base: str = "paper", extra: Sequence[str] = ()) -> tuple[str, ...]:
    """A named list (``pilot`` | ``paper``) plus user keywords, de-duplicated, in order."""
    if base not in KEYWORD_LISTS:
        raise ValueError(f"unknown keyword list {base!r}; choose from {sorted(KEYWORD_LISTS)}")
    seen: dict[str, None] = {}
    for k in [*KEYWORD_LISTS[base], *extra]:
        if k.strip():
            seen.setdefault(k.strip().lower(), None)
    return tuple(seen)


# ---------------------------------------------------------------------- rates
def response_level_rate(flags: Sequence[bool]) -> float:
    """Share of responses flagged (nan for none)."""
    return sum(flags) / len(flags) if flags else float("nan")


def question_level_rate(flags_by_question: Iterable[Sequence[bool]]) -> float:
    """Share of questions with >= 1 flagged response among their samples (nan for none)."""
    per_q = [any(f) for f in flags_by_question]
    return sum(per_q) / len(per_q) if per_q else float("nan")


# ---------------------------------------------------------------------- superficial reflection
@dataclass(frozen=True)
class ReflectionGroups:
    """The pilot study's four groups: {reflection, none} x {correct, incorrect}.

    *Superficial* self-reflection = reflection that does not end in a correct answer
    (``reflect_incorrect``). Whether reflection helps is P(correct | reflection) vs
    P(correct | none); both come with their counts because the reflection group is often
    tiny and the difference noisy.
    """

    counts: dict[str, int]
    """Responses per group: reflect_correct, reflect_incorrect, none_correct, none_incorrect."""
    mean_length: dict[str, float]
    """Mean response length (tokens) per group (nan for an empty group)."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def shares(self) -> dict[str, float]:
        """Each group's share of all responses."""
        t = self.total
        return {g: (n / t if t else float("nan")) for g, n in self.counts.items()}

    @property
    def p_correct_given_reflection(self) -> float:
        n = self.counts["reflect_correct"] + self.counts["reflect_incorrect"]
        return self.counts["reflect_correct"] / n if n else float("nan")

    @property
    def p_correct_given_none(self) -> float:
        n = self.counts["none_correct"] + self.counts["none_incorrect"]
        return self.counts["none_correct"] / n if n else float("nan")

    @property
    def superficial_share(self) -> float:
        """Share of reflective responses that are nonetheless wrong."""
        return 1.0 - self.p_correct_given_reflection

    def to_dict(self) -> dict:
        return {
            "counts": self.counts,
            "shares": self.shares,
            "mean_length": self.mean_length,
            "p_correct_given_reflection": self.p_correct_given_reflection,
            "p_correct_given_none": self.p_correct_given_none,
            "n_reflection": self.counts["reflect_correct"] + self.counts["reflect_incorrect"],
            "n_none": self.counts["none_correct"] + self.counts["none_incorrect"],
            "superficial_share": self.superficial_share,
        }


GROUPS = ("reflect_correct", "reflect_incorrect", "none_correct", "none_incorrect")


def reflection_groups(
    reflective: Sequence[bool], correct: Sequence[bool], lengths: Sequence[float]
) -> ReflectionGroups:
    """Split responses into the four groups (all sequences aligned, one entry per response)."""
    if not len(reflective) == len(correct) == len(lengths):
        raise ValueError("reflective, correct and lengths must have the same length")
    members: dict[str, list[float]] = {g: [] for g in GROUPS}
    for r, c, n in zip(reflective, correct, lengths):
        members[f"{'reflect' if r else 'none'}_{'correct' if c else 'incorrect'}"].append(n)
    return ReflectionGroups(
        counts={g: len(v) for g, v in members.items()},
        mean_length={g: (sum(v) / len(v) if v else float("nan")) for g, v in members.items()},
    )


# ---------------------------------------------------------------------- agreement
