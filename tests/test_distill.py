"""On-policy distillation (--algorithm opd): the per-token rewards are the teacher's minus the
student's log-probs of the student's own tokens, from a local teacher model or from an
OpenAI-compatible server's prompt log-probs; two training steps run with either teacher."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from r1zero.config import ConfigError, TeacherConfig, TrainConfig, derive
from r1zero.core.distill import distill_advantages
from r1zero.learner.batching import TrainSequence
from r1zero.learner.teacher import ServerTeacher, build_teacher, with_teacher
from r1zero.models import load_model
from r1zero.rollout import EngineSpec, SamplingParams, build_backend
from r1zero.rollout.openai import OpenAIBackend, OpenAIBackendError
from r1zero.testing import tiny_model
from tests.test_openai_backend import FakeServer
from tests.test_train_loop import _cfg, tiny_dir  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """Another random model over the same tokenizer: a teacher that disagrees."""
    path = tmp_path_factory.mktemp("teacher")
    model, tok = tiny_model(seed=7)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@torch.no_grad()
def full_logprobs(model, prompt_ids, response_ids) -> torch.Tensor:
    """log p(o_t | q, o_<t) of each response token from one plain forward (T = 1)."""
    ids = torch.tensor([prompt_ids + response_ids])
    logits = model(ids).logits[0, len(prompt_ids) - 1 : -1].double()
    return torch.log_softmax(logits, -1).gather(1, torch.tensor(response_ids)[:, None])[:, 0]


def student_rollout(student_dir):
    """Four student samples (T = 1) with the sampler's log-probs, as the loop builds them."""
    model, tok = load_model(student_dir)
    engine = build_backend(EngineSpec(kind="hf", model_path=student_dir), model=model, tokenizer=tok)
    out = engine.generate(["What is 2 + 5?", "Name a colour:"], SamplingParams(n=2, max_new_tokens=7), [1, 2])
    advs = [0.5, -0.5, 1.0, 0.0]
    return model, [TrainSequence(c.prompt_token_ids, c.token_ids, a, c.logprobs) for c, a in zip(out, advs)]


def test_local_teacher_rewards_are_the_logprob_differences(tiny_dir, teacher_dir):  # noqa: F811
    student, seqs = student_rollout(tiny_dir)
    cfg = TrainConfig(model=tiny_dir, teacher=TeacherConfig(model=teacher_dir), precision="fp32")
    teacher = build_teacher(cfg, torch.device("cpu"), "fp32", load_model(tiny_dir)[1])
    teacher_model = load_model(teacher_dir)[0]
    for weight in (1.0, 0.25, 0.0):
        out, metrics = with_teacher(teacher, seqs, weight)
        tokens, total = 0, 0.0
        for s, o in zip(seqs, out):
            t = full_logprobs(teacher_model, s.prompt_ids, s.response_ids)
            st = full_logprobs(student, s.prompt_ids, s.response_ids)
            assert torch.tensor(s.sampler_logprobs, dtype=torch.float64) == pytest.approx(st, abs=1e-5)
            # A_t = (1 - w) A_i + w (log pi_T - log pi_S), computed here from two forwards
            expected = (1 - weight) * s.advantage + weight * (t - st)
            assert torch.tensor(o.token_advantages) == pytest.approx(expected, abs=1e-5)
            total, tokens = total + float((t - st).sum()), tokens + len(t)
        assert metrics["reward/teacher"] == pytest.approx(total / tokens, abs=1e-5)
        assert metrics["reward/teacher"] < 0  # a random teacher disagrees: reverse KL > 0
    same = build_teacher(replace(cfg, teacher=TeacherConfig(model=tiny_dir)), torch.device("cpu"), "fp32",
                         load_model(tiny_dir)[1])
    out, metrics = with_teacher(same, seqs, 1.0)  # the student as its own teacher: r_t = 0
    assert metrics["reward/teacher"] == pytest.approx(0.0, abs=1e-5)
    assert all(max(abs(a) for a in o.token_advantages) < 1e-5 for o in out)


def scoring_server(model_dir, fmt="vllm"):
    """A local OpenAI-compatible server that answers echo requests with ``model_dir``'s
    prompt log-probs, as vLLM does (``prompt_logprobs``) or OpenAI-style (``token_logprobs``)."""
    model = load_model(model_dir)[0]

    def reply(body, _):
        ids = body["prompt"]
        assert body["echo"] and body["max_tokens"] == 0 and isinstance(ids, list)
        lp = [None] + full_logprobs(model, ids[:1], ids[1:]).tolist()
        if fmt == "vllm":
            rows = [None] + [{str(tok): {"logprob": x, "rank": 1, "decoded_token": "?"}} for tok, x in zip(ids[1:], lp[1:])]
            return 200, {"choices": [{"index": 0, "text": "", "prompt_logprobs": rows,
                                      "logprobs": {"token_logprobs": lp}}]}
        if fmt == "short":
            lp = lp[:2]
        return 200, {"choices": [{"index": 0, "text": "", "logprobs": {"token_logprobs": lp}}]}

    return FakeServer(reply)


@pytest.mark.parametrize("fmt", ["vllm", "openai"])
def test_server_teacher_equals_the_local_teacher(tiny_dir, teacher_dir, fmt):  # noqa: F811
    _, seqs = student_rollout(tiny_dir)
    server = scoring_server(teacher_dir, fmt)
    try:
        cfg = TrainConfig(model=tiny_dir, teacher=TeacherConfig(model="t", base_url=server.url))
        remote = build_teacher(cfg, torch.device("cpu"), "fp32", None)
        assert isinstance(remote, ServerTeacher)
        local = build_teacher(replace(cfg, teacher=TeacherConfig(model=teacher_dir)), torch.device("cpu"),
                              "fp32", load_model(tiny_dir)[1])
        for a, b in zip(remote.logprobs(seqs), local.logprobs(seqs)):
            assert a == pytest.approx(b, abs=1e-5)
        sent = server.requests[0][1]
        assert sent["prompt_logprobs"] == 0 and sent["model"] == "t" and server.requests[0][0] == "/v1/completions"
    finally:
        server.close()


def test_server_that_cannot_score_is_named(teacher_dir):
    server = scoring_server(teacher_dir, "short")
    try:
        with pytest.raises(OpenAIBackendError, match="scored 2 of 5 tokens"):
            OpenAIBackend(server.url, "t").prompt_logprobs([[1, 2, 3, 4, 5]])
    finally:
        server.close()


def test_opd_trains_two_steps_with_either_teacher(tiny_dir, teacher_dir, tmp_path):  # noqa: F811
    from r1zero.train.trainer import train

    server = scoring_server(teacher_dir)
    try:
        for name, teacher in (("local", TeacherConfig(model=teacher_dir)),
                              ("server", TeacherConfig(model="t", base_url=server.url))):
            run = tmp_path / name
            train(_cfg(tiny_dir, run, algorithm="opd", teacher=teacher, eval_every=0))
            records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            assert [r["step"] for r in records] == [1, 2]
            for r in records:
                assert r["reward/teacher"] < 0 and r["optim/grad_norm"] > 0 and r["perf/teacher_s"] >= 0
        assert len(server.requests) == 2 * 2 * 4  # 2 steps x 2 prompts x 4 samples, one request each
    finally:
        server.close()


def test_opd_config_errors():
    with pytest.raises(ConfigError, match="opd .* and --teacher.model go together"):
        derive(TrainConfig(algorithm="opd"))
    with pytest.raises(ConfigError, match="go together"):
        derive(TrainConfig(teacher=TeacherConfig(model="m")))
    with pytest.raises(ConfigError, match="teacher.weight"):
        derive(TrainConfig(algorithm="opd", teacher=TeacherConfig(model="m", weight=1.5)))
    with pytest.raises(ConfigError, match="token_reward"):
        derive(TrainConfig(algorithm="ppo", algo=replace(TrainConfig().algo, baseline="value",
                                                          token_reward="teacher"),
                           teacher=TeacherConfig(model="m")))
    assert distill_advantages(2.0, torch.tensor([-1.0]), torch.tensor([-3.0]), 0.5).item() == 2.0  # 0.5*2 + 0.5*2
