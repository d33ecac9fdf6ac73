"""Arithmetic answers must be numbers; auto extraction; vLLM-CPU request chunking."""

from r1zero.config import TaskConfig
from r1zero.tasks import get_task
from r1zero.templates import get_template


def _arith(**kw):
    task = get_task(TaskConfig(name="arithmetic", num_train=10, num_test=5, **kw))
    return task, task.problems("test")[0], get_template("chat")


def test_equivalent_expression_is_not_an_answer():
    task, p, tpl = _arith()
    a, _, b = p.question.split("?")[0].removeprefix("What is ").split()
    assert task.verify(f"\\boxed{{{a} + {b}}}", p, template=tpl).reason == "not_a_number"
    assert task.verify(f"\\boxed{{{p.answer}}}", p, template=tpl).correct


def test_auto_extraction_accepts_unboxed_final_number_only_when_enabled():
    strict, p, tpl = _arith()
    lenient, _, _ = _arith(extract="auto")
    text = f"The sum is {p.answer}"
    assert not strict.verify(text, p, template=tpl).correct
    assert lenient.verify(text, p, template=tpl).correct
    # an empty box (the instruction echoed) is skipped; a wrong box still wins
    assert lenient.verify(f"\\boxed{{}} so {p.answer}", p, template=tpl).correct
    assert not lenient.verify(f"{p.answer} \\boxed{{1}}", p, template=tpl).correct
    # a short worked sum is read whole and ends on its value; the bare expression does not
    a, _, b = p.question.split("?")[0].removeprefix("What is ").split()
    assert lenient.verify(f"{a} + {b} = {p.answer}", p, template=tpl).correct
    assert lenient.verify(f"{a} + {b}", p, template=tpl).reason == "not_a_number"


def test_vllm_cpu_request_chunks_never_split_a_prefill_budget():
    from r1zero.rollout import vllm as v

    be = v.VLLMBackend.__new__(v.VLLMBackend)
    be.on_cpu = True
    prompts = [[0] * 3000, [0] * 3000, [0] * 100, [0] * 5000]
    chunks = be._request_chunks(prompts, n=2)
    assert chunks[0][0] == 0 and chunks[-1][1] == 8
    assert all(a < b for a, b in chunks) and all(x[1] == y[0] for x, y in zip(chunks, chunks[1:]))
    for lo, hi in chunks:
        tokens = sum(len(prompts[k // 2]) for k in range(lo, hi))
        assert tokens <= v.CPU_PREFILL_BUDGET or hi - lo == 1
    be.on_cpu = False
    assert be._request_chunks(prompts, n=2) == [(0, 8)]
