"""`r1zero sft`: the loss is the responses' negative log-likelihood (prompt tokens are never
targets: zero gradient), examples end like sampled responses, and `r1zero train
--init-from` starts RL from the SFT run (full weights or a merged adapter)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from r1zero.config import ConfigError, LoraConfig, SFTConfig
from r1zero.data import DataError
from r1zero.learner.batching import make_micro_batches
from r1zero.models import load_model
from r1zero.templates import get_template
from r1zero.train.sft import sft, sft_examples
from tests.helpers import local_learner
from tests.test_train_loop import _cfg, tiny_dir  # noqa: F401  (fixture)

PAIRS = [("What is 12 + 30?", "12 + 30 = 42. The answer is \\boxed{42}."),
         ("What is 7 + 8?", "The answer is \\boxed{15}."),
         ("Name a prime:", "<think> 7 </think> <answer>7</answer>")]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"question": q, "completion": r}) + "\n" for q, r in PAIRS))
    return str(path)


def test_examples_are_rendered_prompts_and_ended_responses(tiny_dir, data):  # noqa: F811
    tok = load_model(tiny_dir)[1]
    chat = sft_examples(SFTConfig(data=data), get_template("chat"), tok)
    assert [s.advantage for s in chat] == [1.0] * 3
    assert tok.decode(chat[0].prompt_ids).endswith("<|im_start|>assistant\n")  # the chat template
    assert all(s.response_ids[-1] == tok.eos_token_id for s in chat)  # ended like a sample
    r1 = sft_examples(SFTConfig(data=data, max_response_tokens=5), get_template("r1"), tok)
    assert r1[2].response_ids[-1] != tok.eos_token_id  # it ends with r1's stop string </answer>
    assert all(len(s.response_ids) <= 5 for s in r1)
    with pytest.raises(DataError, match="response field 'answer' not found; available fields: question, completion"):
        sft_examples(SFTConfig(data=data, response_field="answer"), get_template("chat"), tok)


def test_loss_is_response_nll_and_prompt_tokens_get_no_gradient(tiny_dir, data):  # noqa: F811
    """Padded rows: the final hidden state at position t feeds only the logits that predict
    token t + 1, so its gradient is the gradient of that token's loss term. It must be 0
    for every position that predicts a prompt token and non-zero for the response's."""
    model, tok = load_model(tiny_dir)
    cfg = SFTConfig(data=data, precision="fp32", packed=False).learner_config()
    seqs = sft_examples(SFTConfig(data=data), get_template("chat"), tok)
    lrn = local_learner(cfg, model, pad=tok.pad_token_id)
    (mb,) = make_micro_batches(seqs, 4096, tok.pad_token_id, packed=False)
    from r1zero.core.losses import LossNormalizer

    norm = LossNormalizer(len(seqs), sum(len(s.response_ids) for s in seqs))
    held = []

    def keep_final_states(module, args, out) -> None:
        out.last_hidden_state.retain_grad()
        held.append(out.last_hidden_state)

    hook = model.model.register_forward_hook(keep_final_states)
    loss, _ = lrn.objective.loss(lrn, mb, norm, None)
    hook.remove()
    loss.backward()
    grad = held[0].grad.abs().sum(-1)  # [n, L]
    with torch.no_grad():
        nll, count = 0.0, 0
        for row, i in enumerate(mb.index):
            s = seqs[i]
            p, o = len(s.prompt_ids), len(s.response_ids)
            assert float(grad[row, : p - 1].max()) == 0.0  # positions predicting prompt tokens
            assert float(grad[row, p - 1 : p - 1 + o].min()) > 0.0  # positions predicting the response
            logits = model(torch.tensor([s.prompt_ids + s.response_ids])).logits[0, p - 1 : -1]
            nll -= float(torch.log_softmax(logits, -1).gather(1, torch.tensor(s.response_ids)[:, None]).sum())
            count += o
    assert float(loss) == pytest.approx(nll / count, rel=1e-5)  # token-mean NLL of the responses


def test_sft_then_train_init_from(tiny_dir, data, tmp_path):  # noqa: F811
    from r1zero.learner.export import INIT_DIR, run_checkpoint, starting_model
    from r1zero.train.trainer import train

    for name, lora in (("full", LoraConfig()), ("lora", LoraConfig(rank=4))):
        run = tmp_path / f"sft_{name}"
        metrics = sft(SFTConfig(data=data, model=tiny_dir, steps=2, batch_size=3, lr=1e-2, precision="fp32",
                                run_dir=str(run), progress=False, lora=lora))
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        # every step holds all three examples: the second step sees a lower NLL
        assert [r["step"] for r in records] == [1, 2] and records[1]["loss/total"] < records[0]["loss/total"]
        assert metrics["sft/response_tokens"] > 0 and (run / "plots").is_dir()
        rl = tmp_path / f"rl_{name}"
        train(_cfg(tiny_dir, rl, init_from=str(run), steps=1, eval_every=0))
        start = starting_model(str(run), rl)
        assert start == (str(rl / INIT_DIR) if name == "lora" else str(run_checkpoint(run)))
        sft_model = load_model(start)[0].state_dict()
        base = load_model(tiny_dir)[0].state_dict()
        assert any(not torch.equal(sft_model[k], base[k]) for k in base)  # SFT moved the weights
        assert json.loads((rl / "config.json").read_text())["init_from"] == str(run)


def test_sft_config_errors(data):
    with pytest.raises(ConfigError, match="generates nothing"):
        SFTConfig(data=data, cluster=replace(SFTConfig(data=data).cluster, engines=1)).learner_config()
    with pytest.raises(ConfigError, match="no checkpoint"):
        from r1zero.learner.export import run_checkpoint

        run_checkpoint(data.rsplit("/", 1)[0])


def test_sft_resume_continues_the_same_curve(tiny_dir, data, tmp_path):  # noqa: F811
    """3 steps straight = 2 steps, then --resume to 3 (weights, AdamW and the example order
    come back from the checkpoint and the step)."""
    base = SFTConfig(data=data, model=tiny_dir, batch_size=2, lr=1e-2, precision="fp32", progress=False)
    straight = sft(replace(base, steps=3, run_dir=str(tmp_path / "straight")))
    sft(replace(base, steps=2, run_dir=str(tmp_path / "resumed")))
    resumed = sft(replace(base, steps=3, resume=str(tmp_path / "resumed")))
    assert resumed["loss/total"] == pytest.approx(straight["loss/total"], rel=1e-5)
    steps = [json.loads(x)["step"] for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
