"""MT-Bench as routing records: each question's turns, with GPT-4's grade of both models' answers.

RouteLLM ships MT-Bench's 80 questions (`question.jsonl`: two user turns and a category each)
and GPT-4's single-answer grades (`judgements.jsonl`: one line per question, model and turn,
`score` 1-10) of gpt-4-1106-preview's and Mixtral-8x7B-Instruct's answers. A record is one
question and turn: turn 1's prompt is the first user turn, turn 2's is both user turns (a
blank line between), since the second ("Rewrite your previous response...") means nothing
alone. Quality is the score / 10; the category is the group.

RouteLLM itself routes a question once, by its first turn, and scores both turns of the chosen
model; records per turn let every router here be scored the same way as on MMLU and GSM8K
(docs/data.md).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import pandas as pd

from ragrouter.errors import DataValidationError, shown

QUESTIONS_FILE = "question.jsonl"
JUDGEMENTS_FILE = "judgements.jsonl"
TURNS = (1, 2)
MAX_SCORE = 10.0
TURN_SEPARATOR = "\n\n"
QUESTION_COLUMNS = ("question_id", "turns", "category")
JUDGEMENT_COLUMNS = ("question_id", "model", "turn", "score")

Table = tuple[str, pd.DataFrame, list[int]]  # (file, its rows, each row's line number)
Problem = tuple[str, int | None, str | None, str]


def turn_table(questions: Table, judgements: Table, models: tuple[str, str]) -> tuple[pd.DataFrame, list[int]]:
    """One row per question and turn: prompt, each model's quality (a column named by the
    model), category and the question's line; every missing or unusable judgement is named by
    its file and line. The tables hold QUESTION_COLUMNS and JUDGEMENT_COLUMNS (checked by the
    caller)."""
    problems: list[Problem] = []
    scores = _scores(judgements, models, problems)
    questions_file, frame, lines = questions
    out: list[dict[str, Any]] = []
    rows: list[int] = []
    for line, qid, turns, category in zip(lines, frame["question_id"], frame["turns"], frame["category"]):
        if not (isinstance(turns, list) and len(turns) == len(TURNS) and all(isinstance(t, str) for t in turns)):
            problems.append((questions_file, line, "turns", f"expected a list of {len(TURNS)} texts, got {shown(turns)}"))
            continue
        for turn in TURNS:
            quality = {}
            for model in models:
                score = scores.get((qid, model, turn))
                if score is None:
                    problems.append((questions_file, line, "turns", f"no judgement of {model!r} for turn {turn} of question {qid}"))
                quality[model] = math.nan if score is None else score / MAX_SCORE  # NaN: reported
            prompt = TURN_SEPARATOR.join(turns[:turn])
            out.append({"prompt": prompt, **quality, "category": category, "question_id": qid, "turn": turn})
            rows.append(line)
    if problems:
        raise DataValidationError(problems)
    return pd.DataFrame(out), rows


def _scores(judgements: Table, models: tuple[str, str], problems: list[Problem]) -> dict[tuple[Any, str, int], float]:
    """(question_id, model, turn) -> score for the two models (NaN where the line's score is
    unusable, and a problem names it); other models' lines are skipped."""
    file, frame, lines = judgements
    found = set(frame["model"].dropna().astype(str))
    absent = [m for m in models if m not in found]
    if absent:
        raise DataValidationError(
            [(file, None, "model", f"no judgements of {m!r}; models judged: {sorted(found)}") for m in absent]
        )
    scores: dict[tuple[Any, str, int], float] = {}
    where: dict[tuple[Any, str, int], int] = {}
    for line, qid, model, turn, score in zip(lines, frame["question_id"], frame["model"], frame["turn"], frame["score"]):
        if model not in models:
            continue
        key = (qid, model, turn)
        if key in scores:
            problems.append((file, line, None, f"a second judgement of {model!r}, question {qid}, turn {turn} (first on line {where[key]})"))
            continue
        where[key] = line
        if not _is_number(score) or not 0 <= score <= MAX_SCORE:
            problems.append((file, line, "score", f"expected a grade from 0 to {MAX_SCORE:g} (-1: the judge gave none), got {shown(score)}"))
            scores[key] = math.nan  # judged, unusably: reported here, not as missing
            continue
        scores[key] = float(score)
    return scores


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
