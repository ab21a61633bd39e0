"""Grade the records that carry both models' responses but no quality, with the configured judge.

single:   each response rated 1-10 (MT-Bench), quality = rating / 10.
pairwise: the two responses compared twice, the strong one first as assistant A and then as B,
          to cancel the judge's position bias; each verdict gives the strong model 1 (better),
          0.5 (tie) or 0; strong_quality is the mean of the two, weak_quality its complement.
A record whose reply (any of its two) holds no verdict is unparseable: counted, named in the
report by file and row, and left out of the graded records, never labelled by a guess.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ragrouter.data.records import RoutingRecords
from ragrouter.judge.cache import Reply, VerdictCache, verdict_key
from ragrouter.judge.config import JudgeConfig
from ragrouter.judge.prompts import JudgePrompt, pairwise_prompt, parse_rating, parse_winner, single_prompt

logger = logging.getLogger(__name__)
SHOWN_UNPARSEABLE = 10
_STRONG_SHARE = {"A": 1.0, "C": 0.5, "B": 0.0}  # the strong model's share when it is assistant A


class Judge(Protocol):
    name: str  # kept in each graded record's `judge`
    identity: str  # what its verdicts depend on: the cache key's first part
    concurrency: int
    retries: int

    def complete(self, prompt: JudgePrompt) -> Reply: ...


@dataclass
class JudgeReport:
    """What grading did and cost: logged as the step's metadata."""

    judge: str
    mode: str
    pending: int = 0  # records that needed grading
    graded: int = 0
    unparseable: int = 0  # records left out: a reply without a verdict
    unparseable_examples: list[str] = field(default_factory=list)  # "file row N: reply"
    requests: int = 0  # prompts sent to the judge (cache misses)
    cached: int = 0  # prompts answered from the cache
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def build_judge(config: JudgeConfig) -> Judge:
    """The configured back-end: the OpenAI-compatible endpoint or the local causal LM."""
    if config.backend == "openai":
        from ragrouter.judge.endpoint import EndpointJudge

        return EndpointJudge(config.endpoint)
    from ragrouter.judge.local_lm import LocalLMJudge

    return LocalLMJudge(config.local)


def ask(judge: Judge, cache: VerdictCache, prompts: Sequence[JudgePrompt], report: JudgeReport) -> list[Reply]:
    """Each prompt's reply: from the cache, else from the judge (`judge.concurrency` at a time,
    each reply cached as it arrives); requests, cache hits, retries and tokens go to `report`."""
    keys = [verdict_key(judge.identity, p) for p in prompts]
    known = {key: reply for key in set(keys) if (reply := cache.get(key)) is not None}
    missing = {key: prompt for key, prompt in zip(keys, prompts) if key not in known}
    report.cached += sum(key in known for key in keys)
    retries_before = judge.retries
    failed = threading.Event()  # set by the first failure: the prompts not yet sent are dropped

    def complete(prompt: JudgePrompt) -> Reply | None:
        if failed.is_set():
            return None
        try:
            return judge.complete(prompt)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(max_workers=judge.concurrency) as pool:
        futures = {pool.submit(complete, prompt): key for key, prompt in missing.items()}
        try:
            for future in tqdm(as_completed(futures), total=len(futures), desc=f"judging with {judge.name}", disable=not futures):
                reply = future.result()
                if reply is None:
                    continue  # dropped after a failure, which as_completed yields too
                cache.put(futures[future], reply)
                known[futures[future]] = reply
                report.requests += 1
                report.prompt_tokens += reply.prompt_tokens
                report.completion_tokens += reply.completion_tokens
        finally:
            report.retries += judge.retries - retries_before
    return [known[key] for key in keys]


def pending_grading(frame: pd.DataFrame) -> pd.Series:
    """Records with both responses and neither quality: what the judge grades."""
    return (
        frame["strong_quality"].isna() & frame["weak_quality"].isna() & frame["strong_response"].notna() & frame["weak_response"].notna()
    )


def grade_records(records: RoutingRecords, config: JudgeConfig, judge: Judge, cache: VerdictCache) -> tuple[RoutingRecords, JudgeReport]:
    """The records with every pending one graded (or, unparseable, left out), and the report."""
    frame = records.frame.copy()
    pending = pending_grading(frame)
    report = JudgeReport(judge=judge.name, mode=config.mode, pending=int(pending.sum()))
    todo = frame[pending]
    prompts = [p for _, row in todo.iterrows() for p in _prompts(row, config.mode)]
    replies = ask(judge, cache, prompts, report)
    strong, weak = _qualities(replies, config.mode)
    parsed = ~np.isnan(strong)
    frame.loc[todo.index, "strong_quality"] = strong
    frame.loc[todo.index, "weak_quality"] = weak
    frame.loc[todo.index, "judge"] = judge.name
    frame.loc[todo.index, "label_kind"] = "judge"
    unparseable = todo.index[~parsed]
    report.graded, report.unparseable = int(parsed.sum()), len(unparseable)
    report.unparseable_examples = [
        f"{frame.at[i, 'origin_file']} row {frame.at[i, 'origin_row']}: {_first_unparsed(replies[2 * k : 2 * k + 2], config.mode)!r}"
        for k, i in enumerate(todo.index)
        if not parsed[k]
    ][:SHOWN_UNPARSEABLE]
    if report.unparseable:
        logger.warning("judge %s: %d of %d records have a reply without a verdict and are left out, e.g. %s",
                       judge.name, report.unparseable, report.pending, report.unparseable_examples[:3])
    if config.backend == "openai":
        prices = config.endpoint
        report.cost = (report.prompt_tokens * prices.price_per_1k_prompt_tokens + report.completion_tokens * prices.price_per_1k_completion_tokens) / 1000
    return RoutingRecords(frame.drop(index=unparseable)), report


def _prompts(row: pd.Series, mode: str) -> list[JudgePrompt]:
    """A record's two prompts: each answer rated, or the pair compared in both orders."""
    question, strong, weak = row["prompt"], row["strong_response"], row["weak_response"]
    reference = row["reference"] if isinstance(row["reference"], str) and row["reference"].strip() else None
    if mode == "single":
        return [single_prompt(question, strong, reference), single_prompt(question, weak, reference)]
    return [pairwise_prompt(question, strong, weak, reference), pairwise_prompt(question, weak, strong, reference)]


def _qualities(replies: list[Reply], mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Per record (two replies each) its strong and weak quality; NaN where a verdict is missing."""
    strong, weak = [], []
    for first, second in zip(replies[::2], replies[1::2]):
        if mode == "single":
            a, b = parse_rating(first.text), parse_rating(second.text)
            pair = (a / 10, b / 10) if a is not None and b is not None else (math.nan, math.nan)
        else:
            a, b = parse_winner(first.text), parse_winner(second.text)
            share = (_STRONG_SHARE[a] + 1 - _STRONG_SHARE[b]) / 2 if a is not None and b is not None else math.nan
            pair = (share, 1 - share)
        strong.append(pair[0])
        weak.append(pair[1])
    return np.asarray(strong, dtype=np.float64), np.asarray(weak, dtype=np.float64)


def _first_unparsed(replies: list[Reply], mode: str) -> str:
    parse = parse_rating if mode == "single" else parse_winner
    return next((r.text[:80] for r in replies if parse(r.text) is None), "")
