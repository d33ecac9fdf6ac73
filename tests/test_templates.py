"""Tests for prompt templates: exact reference texts, substitution, chat and custom templates."""

from __future__ import annotations

import pytest

from r1zero.templates import TEMPLATES, Template, get_template


def _chat_tokenizer(chat_template: str | None):
    """A real transformers tokenizer (word-level, built in memory) with a given chat template."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(WordLevel({"<unk>": 0}, unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=core, chat_template=chat_template)


def test_reference_texts_are_exact():
    q = "What is 1+1?"
    assert get_template("qwen_math").render(q) == (
        "<|im_start|>system\nPlease reason step by step, and put your final answer within "
        "\\boxed{}.<|im_end|>\n<|im_start|>user\nWhat is 1+1?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    r1 = get_template("r1").render(q)
    assert r1.startswith("A conversation between User and Assistant. The User asks a question")
    assert r1.endswith("</answer>.\nUser: What is 1+1?\nAssistant: <think>")
    assert get_template("no").render(q) == q


def test_stop_strings_and_answer_formats():
    assert get_template("r1").stop == ("</answer>",)
    assert get_template("r1").answer_format == "r1"
    for name in ("qwen_math", "no", "chat"):
        assert get_template(name).stop == ()
        assert get_template(name).answer_format == "boxed"


def test_braces_in_question_are_kept_verbatim():
    # str.format would raise (or substitute) on these; the template must not.
    q = "Let $f(x)=\\frac{1}{x}$ and {question} {0} {{x}}. Find $f(2)$."
    assert get_template("no").render(q) == q
    assert q in get_template("qwen_math").render(q)


def test_custom_template():
    t = get_template("Q: {question}\nA:")
    assert t == Template("custom", "Q: {question}\nA:", (), "boxed")
    assert t.render("2+2?") == "Q: 2+2?\nA:"


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="qwen_math") as info:
        get_template("qwen-math")
    for name in TEMPLATES:
        assert name in str(info.value)


def test_template_instance_passes_through():
    t = Template("mine", "{question}!")
    assert get_template(t) is t


def test_templates_are_frozen():
    with pytest.raises(AttributeError):
        TEMPLATES["r1"].stop = ()  # type: ignore[misc]


def test_chat_template_uses_tokenizer():
    tok = _chat_tokenizer(
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>"
        "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    assert get_template("chat").render("Hi {x}", tok) == "<user>Hi {x}</user><assistant>"


def test_chat_template_errors_are_clear():
    with pytest.raises(ValueError, match="needs a tokenizer"):
        get_template("chat").render("Hi")
    with pytest.raises(ValueError, match="no chat template"):
        get_template("chat").render("Hi", _chat_tokenizer(None))
