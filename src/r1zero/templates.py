"""Prompt templates: how a question is wrapped before the model sees it.

The template is an experimental variable, not a detail: Liu et al. (2025) show that the
R1 ``<think>`` template costs Qwen2.5-Math-1.5B most of its MATH500 accuracy before any
RL, while no template at all is the strongest start. Each template also fixes how the
answer is read back (``answer_format``) and where generation stops (``stop``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

QUESTION = "{question}"
"""The placeholder substituted with the question text."""

QWEN_MATH_TEXT = (
    "<|im_start|>system\nPlease reason step by step, and put your final answer within "
    "\\boxed{}.<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
)
QWEN_MATH_TOOL_TEXT = (
    "<|im_start|>system\nPlease integrate natural language reasoning with programs to solve "
    "the problem, and put your final answer within \\boxed{}. To run Python, write a "
    "```python code block and end your message (or write ```output after the block): the "
    "code runs and what it prints comes back in an ```output block.<|im_end|>\n"
    "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
)
"""Tool-integrated math (``--tools python``, r1zero.envs.python_tool): qwen_math's ChatML
with the tool-call format stated. A turn ends at the model's end of message or at
"```output" (the format Qwen2.5-Math's tool-integrated reasoning was trained on)."""
TOOL_STOP = "```output"
R1_TEXT = (
    "A conversation between User and Assistant. The User asks a question, and the "
    "Assistant solves it. The Assistant first thinks about the reasoning process in the "
    "mind and then provides the User with the answer. The reasoning process is enclosed "
    "within <think> </think> and answer is enclosed within <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here "
    "</answer>.\nUser: {question}\nAssistant: <think>"
)


@dataclass(frozen=True)
class Template:
    """A named prompt template.

    ``text`` contains ``{question}``, which is replaced; ``None`` means "use the
    tokenizer's own chat template". ``stop`` lists stop strings that are kept in the
    output (the r1 template ends at ``</answer>``); templates without stop strings end at
    the model's end-of-sequence token. ``answer_format`` tells the grader where the final
    answer lives: ``"boxed"`` (last ``\\boxed{}``) or ``"r1"`` (inside ``<answer>`` tags).
    """

    name: str
    text: str | None
    stop: tuple[str, ...] = ()
    answer_format: str = "boxed"

    def render(self, question: str, tokenizer: Any = None) -> str:
        """The prompt string for ``question`` (``tokenizer`` is only needed for ``chat``)."""
        if self.text is None:
            return _render_chat(question, tokenizer)
        # str.replace, not str.format: math questions are full of literal braces.
        return self.text.replace(QUESTION, question)


def _render_chat(question: str, tokenizer: Any) -> str:
    """Apply the tokenizer's chat template to a single user turn, ready for the reply."""
    if tokenizer is None:
        raise ValueError("the 'chat' template needs a tokenizer to render prompts")
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', type(tokenizer).__name__)!r} "
            "has no chat template; choose another template (qwen_math, r1, no) or a "
            "custom '...{question}...' string"
        )
    messages = [{"role": "user", "content": question}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


TEMPLATES: dict[str, Template] = {
    "qwen_math": Template("qwen_math", QWEN_MATH_TEXT),
    # The stop string is kept in the output so the grader can see the closed answer tag.
    "r1": Template("r1", R1_TEXT, stop=("</answer>",), answer_format="r1"),
    "qwen_math_tool": Template("qwen_math_tool", QWEN_MATH_TOOL_TEXT, stop=(TOOL_STOP,)),
    "no": Template("no", QUESTION),
    "chat": Template("chat", None),
}
"""Built-in templates by name (texts from the reference recipe, see DESIGN.md)."""


def get_template(name_or_string: str | Template) -> Template:
    """Resolve a template by name, or build a custom one from a ``{question}`` string.

    A custom string is graded in the ``boxed`` format and has no stop strings. Raises
    ``ValueError`` for anything else, listing the valid names.
    """
    if isinstance(name_or_string, Template):
        return name_or_string
    if name_or_string in TEMPLATES:
        return TEMPLATES[name_or_string]
    if isinstance(name_or_string, str) and QUESTION in name_or_string:
        return Template("custom", name_or_string)
    raise ValueError(
        f"unknown template {name_or_string!r}: use one of {', '.join(TEMPLATES)} "
        "or a custom string containing '{question}'"
    )
