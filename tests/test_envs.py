"""The episode driver (r1zero.envs): single-turn episodes are the backend's completions
unchanged; multi-turn episodes are token in / token out (later turns are generated from
the exact ids so far, environment text is tokenised once and masked out); the token and
turn budgets; chat wrapping after an end of message; per-turn rewards and an environment's
own verdict; seeds independent of batching; the Python tool (real sandbox); env/ metrics."""

from __future__ import annotations

import dataclasses

import pytest

from r1zero.config import SandboxConfig, TaskConfig
from r1zero.data import Problem
from r1zero.envs import (
    Episode,
    OneTurn,
    PythonTool,
    Step,
    env_metrics,
    episode_verdicts,
    graded_text,
    run_episodes,
    summary_of,
    tool_call,
)
from r1zero.envs.python_tool import head_tail, reply, shown_output
from r1zero.rollout import FakeBackend, HFBackend, SamplingParams
from r1zero.sandbox import Result
from r1zero.tasks import TaskVerdict, get_task
from r1zero.templates import get_template
from r1zero.testing import tiny_model, tiny_tokenizer
from tests.sandbox_helpers import needs_sandbox

PROBLEM = Problem("p0", "What is 6 * 7?", "42")
TOOL = get_template("qwen_math_tool")


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


class Spy:
    """A backend wrapper that records every generate call's prompts and params."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def generate(self, prompts, params, seeds):
        self.calls.append((list(prompts), params, list(seeds)))
        return self.inner.generate(prompts, params, seeds)


class Scripted:
    """An environment replying with fixed texts, then ending (with an optional verdict and
    per-turn rewards)."""

    def __init__(self, replies, max_turns=4, reward=0.0, verdict=None):
        self.replies, self.max_turns, self.reward, self.verdict = list(replies), max_turns, reward, verdict

    def respond(self, episode):
        k = episode.model_turns - 1
        if k < len(self.replies):
            return Step(text=self.replies[k], reward=self.reward, stats={"hints": 1.0})
        return Step(verdict=self.verdict)

    def close(self):
        pass


def _tool_responder(prompt, j, seed):
    """Turn 1 writes a program and stops at the output marker; turn 2 (whose context holds
    the program) answers."""
    if "print(6 * 7)" in prompt:
        return "So the answer is \\boxed{42}."
    return "Let me compute.\n```python\nprint(6 * 7)\n```\n```output\nthis is cut by the stop string"


# ----------------------------------------------------------------------------- one turn
def test_single_turn_episodes_are_the_backend_completions(tok):
    fake = FakeBackend(tok, ["a \\boxed{1}", "b", "one two three four five six"], logprob=-0.5)
    params = SamplingParams(n=3, max_new_tokens=4)
    want = fake.generate(["p0", "p1"], params, [5, 6])
    got = run_episodes(fake, OneTurn(), tok, [PROBLEM, PROBLEM], ["p0", "p1"], params, [5, 6])
    assert len(fake.calls) == 2  # one generate call, as before
    for w, g in zip(want, got):
        assert dataclasses.replace(g, extra=w.extra) == w
        s = summary_of(g)
        assert s.turns == 1 and s.env_tokens == 0 and s.ended == ("length" if w.truncated else "done")
        assert g.loss_mask is None and graded_text(g) == w.text


# ----------------------------------------------------------------------------- token in / out
def test_two_turn_episode_is_token_in_token_out(tok):
    spy = Spy(FakeBackend(tok, lambda p, j, s: "second turn" if "HINT" in p else "first turn", logprob=-0.25))
    env = Scripted(["\nHINT: try again\n"])
    params = SamplingParams(n=2, max_new_tokens=64, stop=("```output",))
    out = run_episodes(spy, env, tok, [PROBLEM], ["Q:"], params, [3])
    assert len(spy.calls) == 2
    prompts, turn_params, seeds = spy.calls[1]
    assert turn_params.n == 1 and all(isinstance(p, list) for p in prompts)
    for c, context in zip(out, prompts):
        first = tok("first turn", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        # after an end of message the hint is a user message of the chat template
        env_text = c.text[len("first turn"):-len("second turn")]
        assert env_text.startswith("\n<|im_start|>user\nHINT: try again") and env_text.endswith("assistant\n")
        env_ids = tok(env_text, add_special_tokens=False)["input_ids"]  # tokenised once, as is
        second = tok("second turn", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        assert c.token_ids == first + env_ids + second
        assert context == c.prompt_token_ids + first + env_ids  # the exact ids, not re-rendered text
        assert c.loss_mask == [1] * len(first) + [0] * len(env_ids) + [1] * len(second)
        assert c.logprobs == [-0.25] * len(first) + [0.0] * len(env_ids) + [-0.25] * len(second)
        assert graded_text(c) == "first turnsecond turn" and c.finish_reason == "stop"
        s = summary_of(c)
        assert (s.turns, s.env_tokens, s.stats, s.ended) == (2, len(env_ids), {"hints": 1.0}, "done")


def test_turn_seeds_do_not_depend_on_the_batch(tok):
    model, tok2 = tiny_model(seed=0)
    hf = HFBackend(model, tok2)
    env = Scripted(["\nok\n", "\nagain\n"], max_turns=3)
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=12)
    problems = [PROBLEM, dataclasses.replace(PROBLEM, id="p1")]
    both = run_episodes(hf, env, tok2, problems, ["First prompt", "Second one"], params, [1, 2])
    alone = run_episodes(hf, env, tok2, problems[1:], ["Second one"], params, [2])
    assert [c.token_ids for c in both[2:]] == [c.token_ids for c in alone]
    assert all(summary_of(c).turns == 3 or c.truncated for c in both)
    assert both[0].token_ids != both[1].token_ids  # two samples, two seeds


# ----------------------------------------------------------------------------- budgets
def test_token_budget_covers_environment_tokens(tok):
    fake = FakeBackend(tok, lambda p, j, s: "abc")
    env = Scripted(["x " * 200])  # far more than the budget
    out = run_episodes(fake, env, tok, [PROBLEM], ["Q:"], SamplingParams(max_new_tokens=20), [0])[0]
    assert len(out.token_ids) == 20 and out.finish_reason == "length" and out.truncated
    assert summary_of(out).ended == "length" and out.loss_mask.count(1) == len(tok("abc")["input_ids"]) + 1


def test_a_model_turn_past_the_budget_is_cut(tok):
    fake = FakeBackend(tok, lambda p, j, s: "long " * 30 if "more" in p else "short")
    env = Scripted(["\nmore\n"])
    out = run_episodes(fake, env, tok, [PROBLEM], ["Q:"], SamplingParams(max_new_tokens=24, stop=("```output",)), [0])[0]
    assert len(out.token_ids) == 24 and out.finish_reason == "length" and summary_of(out).turns == 2


def test_turn_limit_ends_the_episode(tok):
    fake = FakeBackend(tok, lambda p, j, s: "again")
    out = run_episodes(fake, Scripted(["\n?\n"] * 5, max_turns=2), tok, [PROBLEM], ["Q:"],
                       SamplingParams(max_new_tokens=200), [0])[0]
    s = summary_of(out)
    assert s.turns == 2 and s.ended == "turn_limit" and out.finish_reason == "stop"


# ----------------------------------------------------------------------------- verdicts
def test_environment_verdict_and_per_turn_rewards(tok):
    fake = FakeBackend(tok, lambda p, j, s: "guess")
    own = TaskVerdict(1.0, True, True, "solved")
    out = run_episodes(fake, Scripted(["\nhigher\n"], reward=-0.1, verdict=own), tok, [PROBLEM], ["Q:"],
                       SamplingParams(max_new_tokens=100), [0])
    asked = []
    v = episode_verdicts(out, lambda idx: asked.append(idx) or [])
    assert asked == [] and v[0].reward == pytest.approx(1.0 - 0.1 - 0.0)  # two turns: -0.1, then 0
    assert v[0].components["turns"] == pytest.approx(-0.1) and v[0].reason == "solved"
    plain = run_episodes(fake, OneTurn(), tok, [PROBLEM], ["Q:"], SamplingParams(max_new_tokens=100), [0])
    graded = TaskVerdict(0.0, False, False, "no_answer")
    assert episode_verdicts(plain, lambda idx: [graded] * len(idx)) == [graded]


# ----------------------------------------------------------------------------- python tool
@pytest.mark.parametrize("text, code", [
    ("```python\nprint(1)\n```", "print(1)\n"),
    ("a\n```py\nx = 1\n```\nthen\n```python\nprint(2)\n```\n```output", "print(2)\n"),
    ("```python\nprint(1)\n```\nSo \\boxed{1}.", None),  # a final answer follows: no call
    ("no code here \\boxed{3}", None),
    ("```python\nprint(1)", None),  # unclosed
    ("```text\nprint(1)\n```", None),  # not Python
])
def test_tool_call_format(text, code):
    assert tool_call(text) == code


def test_tool_reply_and_output_shown():
    ok = Result("42\n", "", 0, "ok", completed=True)
    assert reply("x\n```python\nprint(42)\n```\n```output", shown_output(ok, 5)) == "\n42\n```\n"
    assert reply("x\n```python\nprint(42)\n```\n", shown_output(ok, 5)) == "\n```output\n42\n```\n"
    err = Result("", "Traceback (most recent call last):\n  File x\n    1/0\nZeroDivisionError: division by zero\n",
                 1, "error")
    assert shown_output(err, 5).endswith("ZeroDivisionError: division by zero\n")
    assert "TimeoutError: the code ran longer than 2.5 s" in shown_output(Result("", "", -9, "timeout"), 2.5)
    cut = head_tail("a" * 50 + "b" * 50, 40)
    assert cut.startswith("a" * 10) and cut.endswith("b" * 10) and "characters cut" in cut
    assert head_tail("short", 40) == "short"


@needs_sandbox
def test_tool_math_episode_in_the_sandbox(tok):
    task = get_task(TaskConfig(name="arithmetic", num_train=1, num_test=1))
    env = PythonTool(SandboxConfig(workers=1), max_turns=3, timeout_s=5.0)
    try:
        fake = FakeBackend(tok, _tool_responder)
        params = SamplingParams(n=2, max_new_tokens=200, stop=TOOL.stop)
        out = run_episodes(fake, env, tok, [PROBLEM], [TOOL.render(PROBLEM.question)], params, [0])
    finally:
        env.close()
    c = out[0]
    assert c.text == ("Let me compute.\n```python\nprint(6 * 7)\n```\n```output"
                      "\n42\n```\nSo the answer is \\boxed{42}.")
    s = summary_of(c)
    assert s.turns == 2 and s.stats["tool_calls"] == 1 and s.stats["tool_errors"] == 0 and s.stats["sandbox_s"] > 0
    assert s.ended == "done" and s.stats["tool_calls"] == 1  # the second turn made no call
    v = episode_verdicts(out, lambda idx: [task.verify(graded_text(out[i]), PROBLEM, template=TOOL) for i in idx])
    assert v[0].correct and v[0].reward == 1.0
    m = env_metrics(out, v)
    assert m["env/turns"] == 2 and m["env/tool_calls"] == 1 and m["env/tool_error_rate"] == 0
    assert 0 < m["env/env_token_frac"] < 1 and m["env/sandbox_s"] > 0


@needs_sandbox
def test_tool_output_is_not_the_models_answer(tok):
    """A program that prints a boxed answer earns nothing: only the model's text is graded
    (here the program computes 42, which the model's own text never states)."""
    task = get_task(TaskConfig(name="arithmetic", num_train=1, num_test=1))
    env = PythonTool(SandboxConfig(workers=1), max_turns=2)
    try:
        fake = FakeBackend(tok, lambda p, j, s: "done" if "print(" in p else
                           "```python\nprint('\\\\boxed{%d}' % (6 * 7))\n```\n```output")
        out = run_episodes(fake, env, tok, [PROBLEM], [TOOL.render(PROBLEM.question)],
                           SamplingParams(max_new_tokens=200, stop=TOOL.stop), [0])
    finally:
        env.close()
    assert "\\boxed{42}" in out[0].text and "\\boxed{42}" not in graded_text(out[0])
    assert not task.verify(graded_text(out[0]), PROBLEM, template=TOOL).correct


def test_env_metrics_by_hand(tok):
    """Two episodes: 2 turns with 1 tool call that timed out (0.5 s), and 1 turn with none.
    turns (2 + 1) / 2 = 1.5; tool calls 1 / 2 episodes = 0.5; timeout rate 1/1; the code
    task's verdict adds 0.25 s: sandbox 0.75 s."""
    base = FakeBackend(tok, ["x"]).generate(["p"], SamplingParams(n=2), [0])
    from r1zero.envs import EpisodeSummary

    s1 = EpisodeSummary(2, "x", 3, {"tool_calls": 1.0, "tool_timeouts": 1.0, "sandbox_s": 0.5}, (0.0, 0.0), None, "done")
    s2 = EpisodeSummary(1, "x", 0, {"tool_calls": 0.0}, (0.0,), None, "turn_limit")
    comps = [dataclasses.replace(base[0], token_ids=[1] * 9, extra={"episode": s1}),
             dataclasses.replace(base[1], token_ids=[1] * 3, extra={"episode": s2})]
    verdicts = [TaskVerdict(0.0, False, True, "x", components={"sandbox_s": 0.25}), TaskVerdict(0.0, False, True, "x")]
    m = env_metrics(comps, verdicts)
    assert m == {"env/turns": 1.5, "env/env_token_frac": 3 / 12, "env/turn_limit_frac": 0.5,
                 "env/sandbox_s": 0.75, "env/tool_calls": 0.5, "env/tool_error_rate": 0.0,
                 "env/tool_timeout_rate": 1.0}
    # A completion not made by the driver counts as one turn; no tool keys without tool stats.
    assert env_metrics([base[0]], verdicts[1:]) == {"env/turns": 1.0, "env/env_token_frac": 0.0,
                                                    "env/turn_limit_frac": 0.0}


def test_episode_is_read_only_view():
    ep = Episode(PROBLEM, [1, 2], max_turns=3)
    assert ep.turns_left == 3 and ep.model_text == "" and ep.response_ids == []
