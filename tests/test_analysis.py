"""`r1zero analyze`: keyword reflection, rates, groups, agreement, the LLM-judge parser, the
base-model study on a real data slice with scripted backends, and training-run analysis."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest

from r1zero.analysis import AnalyzeConfig, run_analyze, run_analyze_run
from r1zero.analysis.judge import parse_verdict, select_for_judging, stratified_rate
from r1zero.analysis.reflection import (
    DEFAULT_KEYWORDS,
    PAPER_KEYWORDS,
    PILOT_KEYWORDS,
    has_reflection,
    question_level_rate,
    reflection_groups,
    reflection_hits,
    resolve_keywords,
    response_level_rate,
)
from r1zero.analysis.training_runs import RunDirError, length_decomposition
from r1zero.config import ConfigError, JudgeConfig
from r1zero.grading.verdicts import agreement
from r1zero.rollout.base import Completion
from r1zero.templates import get_template
from r1zero.utils import derive_seed
from tests.helpers import DATA, needs_data, with_sampling


# ---------------------------------------------------------------------- keywords
def test_keyword_lists_are_the_papers():
    assert PILOT_KEYWORDS == ["recheck", "rethink", "reevaluate", "re-evaluate", "reevaluation",
                              "re-examine", "reexamine", "try again", "check again", "think again",
                              "go over the steps"]
    assert PAPER_KEYWORDS == PILOT_KEYWORDS + ["reassess", "reconsider", "reanalyze",
                                               "double-check", "verify again"]
    assert tuple(PAPER_KEYWORDS) == DEFAULT_KEYWORDS


def test_reflection_hits_and_has_reflection():
    text = "Wait, let me RECHECK. Rechecking again... I should reconsider; try again."
    hits = reflection_hits(text)
    assert set(hits) == set(DEFAULT_KEYWORDS)  # every keyword is a key, absent ones count 0
    assert hits["recheck"] == 2 and hits["reconsider"] == 1 and hits["try again"] == 1
    assert hits["rethink"] == 0
    assert has_reflection(text) and not has_reflection("The answer is 4.")
    assert not has_reflection(text, keywords=PILOT_KEYWORDS[1:2])  # only "rethink"
    assert has_reflection("hmm, aha!", keywords=resolve_keywords("pilot", ["Aha"]))
    assert resolve_keywords("pilot", ["Recheck", " aha "])[-1] == "aha"  # deduped, normalised
    with pytest.raises(ValueError, match="unknown keyword list"):
        resolve_keywords("mine")


def test_response_vs_question_level_rates():
    # 3 questions x 4 samples; hits: q0 one sample, q1 none, q2 two samples.
    flags = [[True, False, False, False], [False] * 4, [True, True, False, False]]
    assert response_level_rate([f for q in flags for f in q]) == pytest.approx(3 / 12)
    assert question_level_rate(flags) == pytest.approx(2 / 3)
    assert math.isnan(response_level_rate([]))


def test_reflection_groups_by_hand():
    g = reflection_groups([True, True, False, False, False], [True, False, True, True, False],
                          [100, 300, 10, 30, 50])
    assert g.counts == {"reflect_correct": 1, "reflect_incorrect": 1, "none_correct": 2, "none_incorrect": 1}
    assert g.mean_length == {"reflect_correct": 100, "reflect_incorrect": 300, "none_correct": 20,
                             "none_incorrect": 50}
    assert g.p_correct_given_reflection == 0.5 and g.p_correct_given_none == pytest.approx(2 / 3)
    assert g.shares["none_correct"] == pytest.approx(0.4) and g.to_dict()["n_reflection"] == 2


def test_cohen_kappa_by_hand():
    # 10 items: both yes 4, a only 1, b only 1, neither 4. p_o = 0.8; p_a = p_b = 0.5;
    # p_e = 0.5; kappa = (0.8 - 0.5) / 0.5 = 0.6.
    a = [True] * 5 + [False] * 5
    b = [True] * 4 + [False] + [True] + [False] * 4
    got = agreement(a, b)
    assert got["observed"] == pytest.approx(0.8) and got["kappa"] == pytest.approx(0.6)
    assert math.isnan(agreement([False] * 3, [False] * 3)["kappa"])  # chance agreement is 1


# ---------------------------------------------------------------------- judge helpers
@pytest.mark.parametrize(
    "reply, verdict",
    [
        ("It goes back to check step 2.\nVerdict: YES", True),
        ('End with "Verdict: YES" or "Verdict: NO". ... Verdict: no', False),
        ("**Verdict:** **Yes**", True),
        ("No.", False),
        ("YES", True),
        ("yes and no", None),
        ("I cannot tell.", None),
        ("", None),
    ],
)
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) is verdict


def test_judging_subset_is_stratified_and_reweighted():
    flags = [True] * 5 + [False] * 95
    chosen = select_for_judging(flags, limit=10, seed=0)
    assert len(chosen) == 10 and sum(flags[i] for i in chosen) == 5  # all hits, 5 misses
    assert chosen == select_for_judging(flags, limit=10, seed=0)
    # Judge: yes on 4 of the 5 hits, yes on 1 of 5 judged misses ->
    # P = 0.05 * 4/5 + 0.95 * 1/5 = 0.23
    judged = {i: (flags[i] and i != 0) or i == chosen[-1] for i in chosen}
    assert stratified_rate(flags, judged) == pytest.approx(0.05 * 0.8 + 0.95 * 0.2)


# ---------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"samples": 0}, "samples must be >= 1"),
        ({"keyword_list": "mine"}, "keyword-list"),
        ({"judge": JudgeConfig(model="j")}, "--judge.model needs --judge.base-url"),
        ({"backend": "openai"}, "needs --base-url"),
        ({"benchmarks": ("nope",)}, "unknown benchmark"),
        ({"templates": ()}, "at least one"),
    ],
)
def test_analyze_config_validate(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        with_sampling(AnalyzeConfig, **kwargs).validate()


# ---------------------------------------------------------------------- base-model study
class Scripted:
    """Minimal backend: ``respond(prompt, j, seed) -> (text, length)``; no tokenizer needed."""

    def __init__(self, respond):
        self.respond, self.calls, self.closed = respond, 0, False

    def generate(self, prompts, params, seeds):
        self.calls += 1
        out = []
        for i, p in enumerate(prompts):
            for j in range(params.n):
                text, n = self.respond(p, j, derive_seed(seeds[i], j))
                out.append(Completion(i, j, [], list(range(n)), text, "stop"))
        return out

    def close(self):
        self.closed = True


def study_backends(cfg: AnalyzeConfig):
    """m1: always right under qwen_math (sample 0 reflects), never answers under `no`.
    m2: right on even samples; odd samples reflect and are wrong (superficial reflection)."""
    from r1zero.evaluation import resolve_benchmarks

    problems = [p for b in resolve_benchmarks(cfg.eval_config("x", "no", "unused")) for p in b.problems]
    gold = {get_template(t).render(p.question): (t, p.answer) for t in cfg.templates for p in problems}

    def factory(model):
        def respond(prompt, j, seed):
            template, answer = gold[prompt]
            boxed = f"\\boxed{{{answer[0] if isinstance(answer, list) else answer}}}"
            if model == "m1":
                if template == "no":
                    return "I do not know.", 5
                return ("Wait, let me recheck. " if j == 0 else "") + boxed, 10
            return ("So " + boxed, 10 * (j + 1)) if j % 2 == 0 else ("Let me recheck: \\boxed{-1}", 10 * (j + 1))

        return Scripted(respond), None

    return factory


class Judge:
    """Says YES exactly when the judged response contains 'let me recheck'."""

    def __init__(self):
        self.prompts = []

    def generate(self, prompts, params, seeds):
        self.prompts += prompts
        return [Completion(i, 0, [], [], "Reason.\nVerdict: " + ("YES" if "let me recheck" in p.lower() else "NO"), "stop")
                for i, p in enumerate(prompts)]

    def close(self):
        pass


@needs_data
def test_study_on_math500_slice(tmp_path):
    cfg = with_sampling(AnalyzeConfig, models=("m1", "m2"), templates=("qwen_math", "no"), data_dir=str(DATA),
                        limit=3, samples=4, max_new_tokens=64, out_dir=str(tmp_path), quiet=True,
                        judge=JudgeConfig(model="judge", base_url="unused", limit=6))
    judge = Judge()
    summary = run_analyze(cfg, backend_factory=study_backends(cfg), judge_backend=judge)

    assert summary["grid"] == {"m1": {"qwen_math": 1.0, "no": 0.0}, "m2": {"qwen_math": 0.5, "no": 0.5}}
    cells = {(c["model"], c["template"]): c for c in summary["cells"]}
    m1, m2 = cells["m1", "qwen_math"], cells["m2", "no"]
    assert m1["reflection"]["response_level_rate"] == 0.25
    assert m1["reflection"]["question_level_rate"] == 1.0
    assert m1["groups"]["p_correct_given_reflection"] == 1.0
    # m2: 2 of 4 correct per question -> pass@1 = 1/2, pass@2 = 1 - C(2,2)/C(4,2) = 5/6.
    assert m2["pass_at_k"] == pytest.approx({1: 0.5, 2: 5 / 6, 3: 1.0, 4: 1.0})
    g = m2["groups"]
    assert g["counts"] == {"reflect_correct": 0, "reflect_incorrect": 6, "none_correct": 6, "none_incorrect": 0}
    assert g["mean_length"]["reflect_incorrect"] == 30 and g["mean_length"]["none_correct"] == 20
    assert (g["p_correct_given_reflection"], g["p_correct_given_none"]) == (0.0, 1.0)
    assert m2["judge"]["agreement"] == 1.0 and m2["judge"]["cohen_kappa"] == 1.0
    assert m2["judge"]["n_judged"] == 6 and m2["judge"]["keyword_precision"] == 1.0
    assert math.isnan(cells["m1", "no"]["judge"]["cohen_kappa"])  # no hits at all: undefined

    for name in ("report.md", "summary.json", "template_grid.png", "pass_at_k.png", "reflection_groups.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    report = (tmp_path / "report.md").read_text()
    assert "| m1 | 100.0 | 0.0 |" in report and "question-level" in report
    assert json.loads((tmp_path / "summary.json").read_text())["cells"][0]["eval_dir"]

    # Rerun: samples and judge verdicts come from disk, nothing is generated or judged again.
    n_judged = len(judge.prompts)
    factory = study_backends(cfg)
    backends = []
    again = run_analyze(cfg, backend_factory=lambda m: (backends.append(factory(m)[0]) or backends[-1], None),
                        judge_backend=judge)
    assert all(b.calls == 0 and b.closed for b in backends) and len(judge.prompts) == n_judged
    assert again["grid"] == summary["grid"]


# ---------------------------------------------------------------------- training runs
def write_rollouts(run: Path, steps: dict[int, list]) -> None:
    (run / "rollouts").mkdir(parents=True)
    for step, lines in steps.items():
        (run / "rollouts" / f"step_{step:06d}.jsonl").write_text(
            "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")


def roll(step, pid, response, correct, length, **kw):
    return {"step": step, "prompt_id": pid, "response": response, "reward": float(correct),
            "correct": correct, "format_ok": True, "truncated": False, "length": length, **kw}


def test_training_run_decomposition_and_bad_lines(tmp_path):
    r = "Let me recheck this."
    write_rollouts(tmp_path, {
        1: [roll(1, "a", r, True, 100), roll(1, "a", "x", False, 50), roll(1, "b", "x", False, 50),
            roll(1, "b", "x", True, 50, format_ok=False), "{not json", json.dumps({"response": "no length"})],
        2: [roll(2, "a", r, True, 120), roll(2, "b", r, False, 120), roll(2, "a", "x", True, 80),
            roll(2, "b", "x", False, 80), json.dumps(roll(2, "c", "x", True, True))],
    })
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = run_analyze_run(str(tmp_path), window=1)
    messages = [str(w.message) for w in caught]
    assert any("step_000001.jsonl:5: not a JSON object" in m for m in messages)
    assert any("step_000001.jsonl:6: field 'correct'" in m for m in messages)
    assert any("step_000002.jsonl:5: field 'length'" in m for m in messages)

    s1, s2 = s["steps"][1], s["steps"][2]
    assert (s1["n"], s1["reflection_rate"], s1["question_reflection_rate"]) == (4, 0.25, 0.5)
    assert s1["mean_length_correct"] == 75 and s1["mean_length_incorrect"] == 50
    assert s1["mean_length_formatted"] == pytest.approx(200 / 3) and s1["format_rate"] == 0.75
    # r0 = .25, R0 = 100, N0 = 50, L0 = 62.5; r1 = .5, R1 = 120, N1 = 80, L1 = 100.
    # share: (r1 - r0) * ((R0 - N0) + (R1 - N1)) / 2 = .25 * 45 = 11.25
    # within: mean(r) dR + (1 - mean(r)) dN = .375 * 20 + .625 * 30 = 26.25; sum 37.5 = dL.
    d = s["decomposition"]
    assert d["delta_length"] == pytest.approx(37.5)
    assert d["from_reflection_share"] == pytest.approx(11.25) and d["within_groups"] == pytest.approx(26.25)
    out = tmp_path / "analysis"
    assert (out / "run_lengths.png").stat().st_size > 0 and (out / "run_summary.json").exists()
    assert "**37.5**" in (out / "run_report.md").read_text()


def test_a_one_step_run_plot_shows_its_points_on_the_training_step_axis(tmp_path, monkeypatch):
    """Before: "step" on the axis and lines without markers, so one step drew nothing."""
    from matplotlib.figure import Figure

    from r1zero.logging import STEP_AXIS

    figures, real = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (figures.append(self), real(self, *a, **k)))
    write_rollouts(tmp_path, {1: [roll(1, "a", "Wait, check.", True, 40), roll(1, "a", "x", False, 20)]})
    run_analyze_run(str(tmp_path))
    (fig,) = figures
    assert [ax.get_xlabel() for ax in fig.axes] == [STEP_AXIS, STEP_AXIS]
    lines = [ln for ax in fig.axes for ln in ax.get_lines()]
    assert lines and all(ln.get_marker() not in (None, "None", "") for ln in lines)


def test_decomposition_is_exact_for_any_numbers():
    a = {"reflection_rate": 0.1, "mean_length_reflective": 300.0, "mean_length_nonreflective": 90.0,
         "mean_length_incorrect": 0.0, "mean_length_correct": 0.0}
    b = {"reflection_rate": 0.4, "mean_length_reflective": 200.0, "mean_length_nonreflective": 250.0,
         "mean_length_incorrect": 0.0, "mean_length_correct": 0.0}
    for x in (a, b):
        x["mean_length"] = x["reflection_rate"] * x["mean_length_reflective"] + (1 - x["reflection_rate"]) * x["mean_length_nonreflective"]
    d = length_decomposition(a, b)
    assert d["from_reflection_share"] + d["within_groups"] == pytest.approx(d["delta_length"])


def test_training_run_errors_name_the_path(tmp_path):
    with pytest.raises(RunDirError, match="rollouts: no such directory"):
        run_analyze(AnalyzeConfig(run_dir=str(tmp_path)))
    (tmp_path / "rollouts").mkdir()
    with pytest.raises(RunDirError, match="no step_XXXXXX.jsonl"):
        run_analyze_run(str(tmp_path))
    (tmp_path / "rollouts" / "step_000001.jsonl").write_text("garbage\n")
    with pytest.warns(UserWarning, match="step_000001.jsonl"), pytest.raises(RunDirError, match="no usable"):
        run_analyze_run(str(tmp_path))
