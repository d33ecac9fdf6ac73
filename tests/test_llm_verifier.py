"""The reference-guided LLM verifier: when it is asked, its on-disk cache, unclear and failed
replies, its audit against the rule grader, `r1zero eval --judge.*` and the training reward
(`--judge.*`). Judges are scripted: no network, no model."""

from __future__ import annotations

import json
import pickle
import threading
import types
from pathlib import Path

import pytest

from r1zero.config import ConfigError, JudgeConfig, SamplingConfig, TaskConfig
from r1zero.grading import Verdict, grade
from r1zero.grading.llm_verifier import (
    CACHE_FILE,
    MAX_RESPONSE_CHARS,
    JudgeCache,
    JudgeItem,
    ReferenceVerifier,
    judge_prompt,
    needs_judge,
)
from r1zero.rollout.base import Completion
from r1zero.rollout.openai import OpenAIBackendError


# ----------------------------------------------------------------------------- fakes
def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def fair_reply(prompt: str) -> str:
    """A judge that calls the response equivalent when its final part names the reference
    (case-insensitively): enough to tell who decided what."""
    reference = _between(prompt, "Reference answer:\n", "\n\nStudent")
    response = _between(prompt, "<<<\n", "\n>>>")
    ok = reference.lower() in response.lower()
    return f"The final answer {'matches' if ok else 'differs'}. Verdict: {'YES' if ok else 'NO'}"


class ScriptedJudge:
    """A `RolloutBackend` stand-in for the judge: ``reply(prompt) -> text``; records calls."""

    def __init__(self, reply=fair_reply, error: Exception | None = None):
        self.reply, self.error = reply, error
        self.calls: list[list[str]] = []

    def generate(self, prompts, params, seeds):
        assert params.temperature == 0.0 and len(seeds) == len(prompts)
        self.calls.append(list(prompts))
        if self.error is not None:
            raise self.error
        return [Completion(i, 0, [], [], self.reply(p), "stop") for i, p in enumerate(prompts)]

    def close(self):
        pass


def judge_cfg(tmp_path: Path, **kw) -> JudgeConfig:
    return JudgeConfig(model="judge-7b", base_url="http://127.0.0.1:9/v1",
                       cache_dir=str(tmp_path / "cache"), **kw)


def item(response: str, gold, question: str = "Q?") -> JudgeItem:
    return JudgeItem(question, response, gold, grade(response, gold))


# ----------------------------------------------------------------------------- when it is asked
@pytest.mark.parametrize("response, gold", [
    ("I think it is three.", "3"),                       # no box: no_answer
    ("\\boxed{}", "3"),                                  # an empty box states nothing
    ("\\boxed{Tuesday}", "Monday"),                      # text gold, text answer
    ("\\boxed{the planet Jupiter}", "Jupiter"),          # text answer, rules say wrong
    ("\\boxed{five}", "5"),                              # a number written in words
    ("\\boxed{7}", "\\text{Monday}"),                     # text gold (in \\text{})
    ("\\boxed{4}", ["7", "seven days"]),                 # one gold of the list is text
])
def test_undecided_answers_go_to_the_judge(response, gold):
    rule = grade(response, gold)
    assert not rule.correct and needs_judge(rule, gold), rule


@pytest.mark.parametrize("response, gold, extract", [
    ("\\boxed{12}", "12", "boxed"),                          # a rule accept is final
    ("\\boxed{monday}", "Monday", "boxed"),                  # ... also for words
    ("\\boxed{13}", "12", "boxed"),                          # wrong mathematics
    ("\\boxed{x = 5 \\text{ cm}}", "x = 6", "boxed"),         # units and labels are math
    ("\\boxed{3 \\text{ or } 5}", "3", "boxed"),              # a hedge, math
    ("\\boxed{C}", "B", "boxed"),                            # choice letters
    ("\\boxed{no}", "yes", "boxed"),                         # yes / no
    ("Monday", "Monday", "r1"),                              # r1 without tags: format_error
    ("\\boxed{" + "1+" * 600 + "1}", "5", "boxed"),          # a runaway box: too_long
])
def test_decided_answers_stay_with_the_rules(response, gold, extract):
    rule = grade(response, gold, extract=extract)
    assert not needs_judge(rule, gold), rule


def test_timeout_is_undecided_and_bad_input_is_not():
    assert needs_judge(Verdict(False, "\\int x", "timeout"), "5")
    assert not needs_judge(Verdict(False, None, "bad_input"), "5")


def test_prompt_shows_question_reference_and_the_end_of_the_response():
    long = "step " * 2000 + "so it is \\boxed{Jupiter}"
    p = judge_prompt("Largest planet?", ["\\boxed{Jupiter}", "jupiter"], long)
    assert "Largest planet?" in p and "any one of: Jupiter | jupiter" in p
    assert "earlier part omitted" in p and p.count("step") < MAX_RESPONSE_CHARS // 5 + 2
    assert "\\boxed{Jupiter}" in p and p.rstrip().endswith('"Verdict: NO".')


# ----------------------------------------------------------------------------- verify_many + cache
def test_verify_many_asks_only_undecided_and_caches_on_disk(tmp_path):
    items = [item("\\boxed{12}", "12"), item("\\boxed{the planet Jupiter}", "Jupiter"),
             item("\\boxed{13}", "12"), item("It is Saturn.", "Jupiter"),
             item("\\boxed{the planet Jupiter}", "Jupiter")]  # a repeat: one request
    judge = ScriptedJudge()
    v = ReferenceVerifier(judge_cfg(tmp_path), backend=judge)
    first = v.verify_many(items)
    assert [(d.correct, d.decided_by, d.reason) for d in first] == [
        (True, "rule", "correct"), (True, "judge", "judge_equivalent"),
        (False, "rule", "wrong_answer"), (False, "judge", "judge_not_equivalent"),
        (True, "judge", "judge_equivalent")]
    assert len(judge.calls) == 1 and len(judge.calls[0]) == 2  # batched, deduplicated
    assert not any(d.judge.cached for d in first if d.judge)

    again = v.verify_many(items)
    assert len(judge.calls) == 1  # hits never call the model
    assert [d.correct for d in again] == [d.correct for d in first]
    assert all(d.judge.cached for d in again if d.judge)

    other = ScriptedJudge()  # a new process: the cache is on disk
    fresh = ReferenceVerifier(judge_cfg(tmp_path), backend=other).verify_many(items)
    assert other.calls == [] and [d.reason for d in fresh] == [d.reason for d in first]
    lines = (tmp_path / "cache" / CACHE_FILE).read_text().splitlines()
    assert len(lines) == 2 and {json.loads(x)["model"] for x in lines} == {"judge-7b"}


def test_cache_key_depends_on_the_judge_model(tmp_path):
    a = ReferenceVerifier(judge_cfg(tmp_path), backend=ScriptedJudge())
    b = ReferenceVerifier(JudgeConfig(model="other", base_url="u", cache_dir=str(tmp_path / "cache")),
                          backend=ScriptedJudge())
    assert a.key("p") != b.key("p") and a.key("p") == a.key("p")


def test_torn_last_line_is_ignored_and_never_swallows_a_new_record(tmp_path):
    path = tmp_path / "cache" / CACHE_FILE
    path.parent.mkdir()
    path.write_text(json.dumps({"key": "a", "verdict": True, "reply": "Verdict: YES"}) + "\n"
                    + '{"key": "b", "verd')  # the process died mid-write
    cache = JudgeCache(tmp_path / "cache")
    assert len(cache) == 1 and cache.get("a")["verdict"] is True and cache.get("b") is None
    cache.put_many([{"key": "c", "verdict": False, "reply": ""}])
    reloaded = JudgeCache(tmp_path / "cache")
    assert sorted(reloaded._entries) == ["a", "c"]


def test_concurrent_writers_append_whole_lines(tmp_path):
    def writer(w: int) -> None:
        cache = JudgeCache(tmp_path / "cache")  # its own file handle, like another process
        for batch in range(20):
            cache.put_many([{"key": f"{w}-{batch}-{i}", "verdict": True, "reply": "x" * 3000}
                            for i in range(5)])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "cache" / CACHE_FILE).read_text().splitlines()
    assert len(lines) == 4 * 20 * 5 and all(json.loads(x)["verdict"] is True for x in lines)
    assert len(JudgeCache(tmp_path / "cache")) == 400


def test_unclear_reply_is_not_correct_and_never_guessed(tmp_path):
    judge = ScriptedJudge(lambda p: "Both readings are defensible; yes and no.")
    v = ReferenceVerifier(judge_cfg(tmp_path), backend=judge)
    (d,) = v.verify_many([item("\\boxed{the planet Jupiter}", "Jupiter")])
    assert (d.correct, d.decided_by, d.reason, d.judge.verdict) == (False, "judge", "judge_unclear", None)
    (again,) = v.verify_many([item("\\boxed{the planet Jupiter}", "Jupiter")])
    assert again.reason == "judge_unclear" and again.judge.cached and len(judge.calls) == 1


def test_failed_judge_keeps_the_rule_verdict_and_asks_again_later(tmp_path):
    down = ScriptedJudge(error=OpenAIBackendError("giving up after 6 attempts"))
    v = ReferenceVerifier(judge_cfg(tmp_path), backend=down)
    with pytest.warns(UserWarning, match="judge request failed"):
        (d,) = v.verify_many([item("\\boxed{the planet Jupiter}", "Jupiter")])
    assert (d.correct, d.reason, d.judge.label) == (False, "judge_error", "error")
    up = ScriptedJudge()
    (d,) = ReferenceVerifier(judge_cfg(tmp_path), backend=up).verify_many(
        [item("\\boxed{the planet Jupiter}", "Jupiter")])
    assert d.reason == "judge_equivalent" and len(up.calls) == 1  # nothing was cached


def test_a_bug_in_the_judge_backend_is_not_swallowed(tmp_path):
    v = ReferenceVerifier(judge_cfg(tmp_path), backend=ScriptedJudge(error=KeyError("bug")))
    with pytest.raises(KeyError):
        v.verify_many([item("no answer here", "Jupiter")])


def test_audit_reports_agreement_on_rule_decided_answers(tmp_path):
    # 6 rule-correct and 6 rule-wrong mathematical answers; the judge agrees except that
    # it accepts "\\boxed{3}" for gold 2 (a judge mistake the audit must surface).
    items = [item(f"\\boxed{{{n}}}", str(n)) for n in range(6)]
    items += [item(f"\\boxed{{{n + 1}}}", str(n)) for n in range(6)]
    items.append(item("no answer at all", "9"))  # undecided: never in the audit
    sloppy = lambda p: "Verdict: YES" if "<<<\n\\boxed{3}" in p else fair_reply(p)
    v = ReferenceVerifier(judge_cfg(tmp_path), backend=ScriptedJudge(sloppy))
    full = v.audit(items, 100, seed=0)
    assert full["n_sampled"] == 12 and full["n_compared"] == 12 and full["unclear"] == 0
    assert (full["rule_correct_judge_yes"], full["rule_correct_judge_no"],
            full["rule_wrong_judge_yes"], full["rule_wrong_judge_no"]) == (6, 0, 1, 5)
    assert full["agree"] == 11 and full["rate"] == pytest.approx(11 / 12)
    part = v.audit(items, 5, seed=3)
    assert part["n_sampled"] == 5 and part == v.audit(items, 5, seed=3)  # seeded sample


def test_verifier_pickles_as_its_config(tmp_path):
    v = ReferenceVerifier(judge_cfg(tmp_path), backend=ScriptedJudge())
    back = pickle.loads(pickle.dumps(v))
    assert back.cfg == v.cfg and back._backend is None  # a worker makes its own client


# ----------------------------------------------------------------------------- config
def test_judge_config_checks():
    JudgeConfig().check()  # off: nothing to check
    with pytest.raises(ConfigError, match="--judge.model needs --judge.base-url"):
        JudgeConfig(model="m").check()
    with pytest.raises(ConfigError, match="endpoint"):
        JudgeConfig(model="m", base_url="u", endpoint="grpc").check()
    from r1zero.config import TrainConfig

    with pytest.raises(ConfigError, match="applies to the math and gsm8k"):
        TrainConfig(task=TaskConfig(name="countdown"), judge=JudgeConfig(model="m", base_url="u")).validate()
    with pytest.raises(ConfigError, match="--judge.model needs"):
        TrainConfig(task=TaskConfig(name="math", train_path="x"), judge=JudgeConfig(model="m")).validate()


def test_flags_parse():
    import tyro

    from r1zero.config import TrainConfig
    from r1zero.evaluation import EvalConfig

    e = tyro.cli(EvalConfig, args=["--judge.model", "j", "--judge.base-url", "u", "--judge.audit", "50"])
    assert (e.judge.model, e.judge.base_url, e.judge.audit, e.judge.endpoint) == ("j", "u", 50, "chat")
    t = tyro.cli(TrainConfig, args=["--task.name", "math", "--judge.model", "j"])
    assert t.judge.model == "j" and TrainConfig().judge.enabled is False
    from r1zero.analysis import AnalyzeConfig

    a = tyro.cli(AnalyzeConfig, args=["--judge.model", "j", "--judge.base-url", "u", "--judge.limit", "9"])
    assert (a.judge.model, a.judge.limit) == ("j", 9)  # one spelling in train, eval and analyze


# ----------------------------------------------------------------------------- r1zero eval
PROBLEMS = [  # (question, gold, the policy's response, final correctness, who decides)
    ("What day follows Sunday?", "Monday", "It is \\boxed{monday}.", True, "rule"),
    ("Which planet is largest?", "Jupiter", "\\boxed{the planet Jupiter}", True, "judge"),
    ("What is 5 + 7?", "12", "\\boxed{12}", True, "rule"),
    ("What is 3 + 4?", "7", "\\boxed{8}", False, "rule"),
    ("What is 1 + 2?", "3", "I believe it is three.", False, "judge"),
    ("What day follows Monday?", "Tuesday", "\\boxed{Wednesday}", False, "judge"),
]


@pytest.fixture(scope="module")
def tokenizer():
    from r1zero.testing import tiny_tokenizer

    return tiny_tokenizer()


def eval_setup(tmp_path: Path, tokenizer, **judge_kw):
    from r1zero.evaluation import EvalConfig
    from r1zero.rollout.fake import FakeBackend

    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"problem": q, "answer": a}) + "\n" for q, a, *_ in PROBLEMS))
    cfg = EvalConfig(data=(f"qa={data}",), template="no", out_dir=str(tmp_path / "eval"),
                     quiet=True, sampling=SamplingConfig(max_new_tokens=64),
                     judge=judge_cfg(tmp_path, **judge_kw) if judge_kw else JudgeConfig())
    answers = {q: r for q, _, r, *_ in PROBLEMS}
    return cfg, FakeBackend(tokenizer, lambda prompt, j, seed: answers[prompt])


def test_eval_judge_decides_only_undecided_answers(tmp_path, tokenizer):
    from r1zero.evaluation import read_samples, run_eval

    cfg, policy = eval_setup(tmp_path, tokenizer, audit=10)
    judge = ScriptedJudge()
    res = run_eval(cfg, backend=policy, judge_backend=judge)
    samples = {r["response"]: r for r in read_samples(Path(cfg.out_dir) / "samples.jsonl")}
    for _, _, response, correct, who in PROBLEMS:
        r = samples[response]
        assert (r["correct"], r["decided_by"]) == (correct, who), r
        assert ("judge_verdict" in r) == (who == "judge")
    assert samples["\\boxed{the planet Jupiter}"]["rule_correct"] is False
    m = res["benchmarks"]["qa"]
    assert m["accuracy"] == pytest.approx(3 / 6) and m["rule_accuracy"] == pytest.approx(2 / 6)
    j = res["judge"]
    assert {k: j[k] for k in ("asked", "cache_hits", "judged_correct", "judged_wrong", "unclear",
                              "errors")} == {"asked": 3, "cache_hits": 0, "judged_correct": 1,
                                             "judged_wrong": 2, "unclear": 0, "errors": 0}
    a = j["agreement"]  # the 3 rule-decided answers, all agreed with
    assert (a["n_sampled"], a["agree"], a["rate"]) == (3, 3, 1.0)
    assert (a["rule_correct_judge_yes"], a["rule_wrong_judge_no"]) == (2, 1)
    saved = json.loads((Path(cfg.out_dir) / "results.json").read_text())
    assert saved["judge"]["judged_correct"] == 1 and saved["config"]["judge"]["model"] == "judge-7b"
    md = (Path(cfg.out_dir) / "results.md").read_text()
    assert "LLM judge `judge-7b`: asked on 3 answers" in md and "Accuracy, rule grader only" in md

    # Rerun: nothing regenerated, every judge verdict from the cache.
    again_judge = ScriptedJudge()
    res2 = run_eval(cfg, backend=eval_setup(tmp_path, tokenizer, audit=10)[1],
                    judge_backend=again_judge)
    assert again_judge.calls == [] and res2["judge"]["cache_hits"] == 3
    assert res2["benchmarks"]["qa"]["accuracy"] == m["accuracy"]

    # Without the judge the rules' verdicts stand again, and the records say so.
    plain_cfg, plain_policy = eval_setup(tmp_path, tokenizer)
    res3 = run_eval(plain_cfg, backend=plain_policy)
    assert "judge" not in res3 and res3["benchmarks"]["qa"]["accuracy"] == pytest.approx(2 / 6)
    assert not any("decided_by" in r for r in read_samples(Path(cfg.out_dir) / "samples.jsonl"))


# ----------------------------------------------------------------------------- training reward
def test_math_task_rewards_a_judged_equivalent_text_answer(tmp_path):
    from r1zero.tasks import Problem
    from r1zero.tasks.math import MathTask
    from r1zero.templates import get_template
    from r1zero.train.trainer import score

    cfg = TaskConfig(name="math")
    judge = ScriptedJudge()
    task = MathTask(cfg, verifier=ReferenceVerifier(judge_cfg(tmp_path), backend=judge))
    template = get_template("qwen_math")
    planet = Problem("p1", "Which planet is largest?", "Jupiter")
    v = task.verify("So: \\boxed{the planet Jupiter}", planet, template=template)
    assert (v.reward, v.correct, v.reason, v.format_ok) == (1.0, True, "judge_equivalent", True)
    assert task.verify("\\boxed{Saturn}", planet, template=template).reward == 0.0

    # The trainer's rewards phase sends a step's undecided responses in one batch.
    sum_ = Problem("p2", "What is 2 + 2?", "4")
    texts = ["\\boxed{4}", "\\boxed{the planet Jupiter!}", "\\boxed{5}", "Jupiter, surely"]
    completions = [Completion(i // 2, i % 2, [], [], t, "stop") for i, t in enumerate(texts)]
    t = types.SimpleNamespace(verifiers=None, task=task, template=template,
                              cfg=types.SimpleNamespace(truncation="zero"))
    calls = len(judge.calls)
    verdicts = score(t, [sum_, planet], completions)
    assert [x.reward for x in verdicts] == [1.0, 0.0, 0.0, 1.0]
    assert [x.reason for x in verdicts] == ["correct", "judge_not_equivalent",
                                            "judge_not_equivalent", "judge_equivalent"]
    assert len(judge.calls) == calls + 1 and len(judge.calls[-1]) == 3


def test_math_task_judge_over_http_from_its_config(tmp_path):
    """The path a reward worker takes: the task and its judge built from the TaskConfig and
    the JudgeConfig alone, asking an OpenAI-compatible chat server."""
    from r1zero.tasks import Problem, get_task
    from r1zero.templates import get_template
    from tests.test_openai_backend import FakeServer

    def chat(body, _):
        text = fair_reply(body["messages"][0]["content"])
        return 200, {"choices": [{"message": {"content": text}, "finish_reason": "stop"}]}

    server = FakeServer(chat)
    try:
        cfg = TaskConfig(name="gsm8k")
        judge = JudgeConfig(model="j", base_url=server.url, cache_dir=str(tmp_path / "c"))
        task = pickle.loads(pickle.dumps(get_task(cfg, judge)))  # picklable, judge included
        v = task.verify("\\boxed{the planet Jupiter}", Problem("p", "Largest planet?", "Jupiter"),
                        template=get_template("qwen_math"))
        assert (v.reward, v.reason) == (1.0, "judge_equivalent")
        (path, body, _), = server.requests
        assert path == "/v1/chat/completions" and body["model"] == "j" and body["temperature"] == 0.0
        task.judge.close()
    finally:
        server.close()


def test_reward_worker_builds_the_judge_from_config(tmp_path):
    """--reward-workers: each worker process rebuilds the task, and its judge, from the
    TaskConfig, and shares the cache file with the driver."""
    from r1zero.tasks import Problem
    from r1zero.templates import get_template
    from r1zero.train.verifier_pool import VerifierPool
    from tests.test_openai_backend import FakeServer

    def chat(body, _):
        text = fair_reply(body["messages"][0]["content"])
        return 200, {"choices": [{"message": {"content": text}, "finish_reason": "stop"}]}

    server = FakeServer(chat)
    cfg = TaskConfig(name="math")
    judge = JudgeConfig(model="j", base_url=server.url, cache_dir=str(tmp_path / "c"))
    planet = Problem("p", "Largest planet?", "Jupiter")
    try:
        with VerifierPool(cfg, get_template("qwen_math"), workers=1, judge=judge) as pool:
            got = pool.verify(["\\boxed{the planet Jupiter}", "\\boxed{Saturn}", "\\boxed{Jupiter}"],
                              [planet] * 3)
        assert [(v.reward, v.reason) for v in got] == [
            (1.0, "judge_equivalent"), (0.0, "judge_not_equivalent"), (1.0, "correct")]
        assert len(JudgeCache(tmp_path / "c")) == 2 and len(server.requests) == 2
    finally:
        server.close()
