"""MT-Bench's judge prompts (lm-sys FastChat, `judge_prompts.jsonl`) and how verdicts are read.

Single-answer grading asks for a 1-10 rating written `[[n]]`; with a reference answer the
"math" variant asks the judge to compare with it. Pairwise grading asks which of two answers
is better: `[[A]]`, `[[B]]` or `[[C]]` (a tie). A reply without such a verdict is unparseable:
the caller counts it and labels nothing from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_RATING_RULE = (
    'After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly '
    'following this format: "[[rating]]", for example: "Rating: [[5]]".'
)
_SINGLE = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI "
    "assistant to the user question displayed below. Your evaluation should consider factors such as the "
    "helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response. Begin your "
    f"evaluation by providing a short explanation. Be as objective as possible. {_RATING_RULE}\n\n"
    "[Question]\n{question}\n\n[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
)
_SINGLE_REFERENCE = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI "
    "assistant to the user question displayed below. Your evaluation should consider correctness and "
    "helpfulness. You will be given a reference answer and the assistant's answer. Begin your evaluation by "
    "comparing the assistant's answer with the reference answer. Identify and correct any mistakes. Be as "
    f"objective as possible. {_RATING_RULE}\n\n"
    "[Question]\n{question}\n\n[The Start of Reference Answer]\n{reference}\n[The End of Reference Answer]\n\n"
    "[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
)
SINGLE_SYSTEM = "You are a helpful assistant."
# MT-Bench's second-turn prompts put the instruction in the system message; the user message is
# the conversation (`user_prompt` of its judgements), used as it is by bench/judge_agreement.py.
MULTI_TURN_SYSTEM = {
    False: "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant "
    "to the user question displayed below. Your evaluation should consider factors such as the helpfulness, "
    "relevance, accuracy, depth, creativity, and level of detail of the response. You evaluation should focus on "
    "the assistant's answer to the second user question. Begin your evaluation by providing a short explanation. "
    f"Be as objective as possible. {_RATING_RULE}\n\n",
    True: "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant "
    "to the user question. Your evaluation should consider correctness and helpfulness. You will be given a "
    "reference answer and the assistant's answer. You evaluation should focus on the assistant's answer to the "
    "second question. Begin your evaluation by comparing the assistant's answer with the reference answer. "
    f"Identify and correct any mistakes. Be as objective as possible. {_RATING_RULE}\n\n",
}
_PAIR_RULES = (
    "Avoid any position biases and ensure that the order in which the responses were presented does not "
    "influence your decision. Do not allow the length of the responses to influence your evaluation. Do not "
    "favor certain names of the assistants. Be as objective as possible. After providing your explanation, "
    'output your final verdict by strictly following this format: "[[A]]" if assistant A is better, "[[B]]" '
    'if assistant B is better, and "[[C]]" for a tie.'
)
PAIR_SYSTEM = {
    False: "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
    "assistants to the user question displayed below. You should choose the assistant that follows the user's "
    "instructions and answers the user's question better. Your evaluation should consider factors such as the "
    "helpfulness, relevance, accuracy, depth, creativity, and level of detail of their responses. Begin your "
    f"evaluation by comparing the two responses and provide a short explanation. {_PAIR_RULES}",
    True: "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
    "assistants to the user question displayed below. Your evaluation should consider correctness and "
    "helpfulness. You will be given reference answer, assistant A's answer, and assistant B's answer. Your job "
    "is to evaluate which assistant's answer is better. Begin your evaluation by comparing both assistants' "
    f"answers with the reference answer. Identify and correct any mistakes. {_PAIR_RULES}",
}
_PAIR = (
    "[User Question]\n{question}\n\n{reference_block}[The Start of Assistant A's Answer]\n{answer_a}\n"
    "[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)

# MT-Bench's patterns: the first `[[n]]` (else `[n]`) of a reply is its rating.
_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_LOOSE = re.compile(r"\[(\d+\.?\d*)\]")
_WINNER = re.compile(r"\[\[([ABC])\]\]")


@dataclass(frozen=True)
class JudgePrompt:
    """One request to the judge: a system and a user message, and the start of its reply (a
    local judge that is primed begins its answer there; an endpoint gets the messages only)."""

    system: str
    user: str
    verdict_prefix: str


def single_prompt(question: str, answer: str, reference: str | None) -> JudgePrompt:
    """MT-Bench's single-answer grading prompt (its "math" variant where a reference is given)."""
    if reference:
        user = _SINGLE_REFERENCE.format(question=question, reference=reference, answer=answer)
    else:
        user = _SINGLE.format(question=question, answer=answer)
    return JudgePrompt(SINGLE_SYSTEM, user, "Rating: [[")


def pairwise_prompt(question: str, answer_a: str, answer_b: str, reference: str | None) -> JudgePrompt:
    """MT-Bench's pairwise prompt: which of assistant A's and B's answers is better."""
    block = f"[The Start of Reference Answer]\n{reference}\n[The End of Reference Answer]\n\n" if reference else ""
    user = _PAIR.format(question=question, reference_block=block, answer_a=answer_a, answer_b=answer_b)
    return JudgePrompt(PAIR_SYSTEM[bool(reference)], user, "[[")


def parse_rating(reply: str) -> float | None:
    """The 1-10 rating of a reply, or None where it gives none (or one out of range)."""
    match = _RATING.search(reply) or _RATING_LOOSE.search(reply)
    if match is None:
        return None
    rating = float(match.group(1))
    return rating if 1 <= rating <= 10 else None


def parse_winner(reply: str) -> str | None:
    """"A", "B" or "C" (a tie) from a pairwise reply, or None where it gives no verdict."""
    match = _WINNER.search(reply)
    return None if match is None else match.group(1)
