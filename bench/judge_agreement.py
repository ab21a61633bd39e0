"""How far the configured judge agrees with references: GPT-4's MT-Bench scores and GSM8K's
golden correctness.

    python bench/judge_agreement.py [--config run.yaml] [--mt-bench 80] [--gsm8k 100] [--out reports/judge_agreement]

The judge is the run config's `judge:` section (without --config: the local SmolLM2-135M-Instruct,
primed at the verdict). It re-grades:
- MT-Bench judgements (data/routellm/mt_bench): the same prompt GPT-4 was given (its
  `user_prompt`, with MT-Bench's system prompt for the turn), a sample spread over the eight
  categories, both models' answers to each sampled question and turn. Reported: Spearman's rho
  between the judge's rating and GPT-4's score per category and overall, and per question/turn
  whether the judge prefers the same model as GPT-4 (better, worse or tie).
- GSM8K answers (gsm8k_responses.csv): both models' answers to sampled questions, rated with
  MT-Bench's reference-guided prompt (the reference solution from test.jsonl). Reported:
  accuracy of "rating >= 6 means correct" and the ROC AUC of the rating against the golden
  correctness.
Writes judge_agreement.md (tables) and judge_agreement.png (plots) under --out; verdicts go
through the judge's cache, so a re-run with the same judge asks it nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from bench.machine import cpu_model  # noqa: E402
from ragrouter.judge.cache import VerdictCache  # noqa: E402
from ragrouter.judge.config import JudgeConfig  # noqa: E402
from ragrouter.judge.grading import JudgeReport, ask, build_judge  # noqa: E402
from ragrouter.judge.prompts import MULTI_TURN_SYSTEM, SINGLE_SYSTEM, JudgePrompt, parse_rating, single_prompt  # noqa: E402

STRONG, WEAK = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
CORRECT_FROM = 6  # a rating >= 6 reads as "correct"


def _order(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def mt_bench_sample(data: Path, judgements: int) -> pd.DataFrame:
    """judgements / 2 (question, turn) pairs with both models' judgements, spread round-robin
    over the categories in a fixed hashed order."""
    categories = {q["question_id"]: q["category"] for q in map(json.loads, (data / "question.jsonl").open())}
    frame = pd.DataFrame([json.loads(line) for line in (data / "judgements.jsonl").open()])
    frame["category"] = frame["question_id"].map(categories)
    frame["kind"] = frame["judge"].map(lambda j: j[1])
    pairs = frame.groupby(["question_id", "turn"]).filter(lambda g: set(g["model"]) == {STRONG, WEAK})
    keys = pairs[["question_id", "turn", "category"]].drop_duplicates()
    keys = keys.assign(order=[_order(f"{q}-{t}") for q, t in zip(keys["question_id"], keys["turn"])]).sort_values("order")
    keys["rank"] = keys.groupby("category").cumcount()
    chosen = keys.sort_values(["rank", "order"]).head(judgements // 2)
    return pairs.merge(chosen[["question_id", "turn"]], on=["question_id", "turn"]).sort_values(["question_id", "turn", "model"])


def mt_bench_prompt(row: pd.Series) -> JudgePrompt:
    """GPT-4's prompt for this judgement: turn 1 carries the instructions in the user message,
    turn 2 in the system message (the math variants compare with a reference)."""
    if row["turn"] == 1:
        return JudgePrompt(SINGLE_SYSTEM, row["user_prompt"], "Rating: [[")
    return JudgePrompt(MULTI_TURN_SYSTEM["math" in row["kind"]], row["user_prompt"], "Rating: [[")


def gsm8k_sample(data: Path, answers: int) -> pd.DataFrame:
    """answers / 2 questions in a fixed hashed order, each with both models' answers."""
    frame = pd.read_csv(data / "gsm8k_responses.csv")
    references = {r["question"]: r["answer"] for r in map(json.loads, (data / "test.jsonl").open())}
    frame = frame[frame["prompt"].isin(references)]
    frame = frame.assign(order=frame["prompt"].map(_order)).sort_values("order").head(answers // 2)
    rows = [
        {"prompt": r["prompt"], "model": model, "answer": r[f"{model}_response"], "reference": references[r["prompt"]],
         "correct": str(r[model]) == "True"}
        for _, r in frame.iterrows()
        for model in (STRONG, WEAK)
    ]
    return pd.DataFrame(rows)


def spearman(a: pd.Series, b: pd.Series) -> float:
    from scipy.stats import spearmanr

    if len(a) < 3 or a.nunique() < 2 or b.nunique() < 2:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def mt_bench_tables(sample: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    graded = sample.dropna(subset=["rating"])
    rows = [
        {"category": c, "judgements": int((sample["category"] == c).sum()), "parsed": len(g), "spearman": spearman(g["rating"], g["score"])}
        for c, g in sorted(graded.groupby("category"), key=lambda item: item[0])
    ]
    rows.append({"category": "all", "judgements": len(sample), "parsed": len(graded), "spearman": spearman(graded["rating"], graded["score"])})
    wide = graded.pivot_table(index=["question_id", "turn"], columns="model", values=["rating", "score"]).dropna()
    judge_pref = np.sign(wide[("rating", STRONG)] - wide[("rating", WEAK)])
    gpt4_pref = np.sign(wide[("score", STRONG)] - wide[("score", WEAK)])
    pairs = {"pairs": len(wide), "agreement": float((judge_pref == gpt4_pref).mean()) if len(wide) else float("nan"),
             "gpt4_prefers_strong": float((gpt4_pref > 0).mean()) if len(wide) else float("nan"),
             "judge_ties": float((judge_pref == 0).mean()) if len(wide) else float("nan")}
    return pd.DataFrame(rows), pairs


def gsm8k_table(sample: pd.DataFrame) -> dict:
    from sklearn.metrics import roc_auc_score

    graded = sample.dropna(subset=["rating"])
    auc = roc_auc_score(graded["correct"], graded["rating"]) if graded["correct"].nunique() == 2 else float("nan")
    return {"answers": len(sample), "parsed": len(graded), "accuracy": float(((graded["rating"] >= CORRECT_FROM) == graded["correct"]).mean()),
            "majority_baseline": float(max(graded["correct"].mean(), 1 - graded["correct"].mean())), "roc_auc": float(auc)}


def plot(mt: pd.DataFrame, gsm: pd.DataFrame, path: Path, judge: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    graded = mt.dropna(subset=["rating"])
    jitter = np.random.default_rng(0).uniform(-0.2, 0.2, size=(2, len(graded)))
    left.scatter(graded["score"] + jitter[0], graded["rating"] + jitter[1], s=12, alpha=0.6)
    left.set(xlabel="GPT-4 score (MT-Bench)", ylabel="judge rating", title="MT-Bench: judge vs GPT-4", xlim=(0, 11), ylim=(0, 11))
    ratings = gsm.dropna(subset=["rating"])
    bins = np.arange(0.5, 11.5, 1)
    right.hist([ratings.loc[ratings["correct"], "rating"], ratings.loc[~ratings["correct"], "rating"]], bins=bins, label=["correct", "wrong"])
    right.set(xlabel="judge rating", ylabel="answers", title="GSM8K: rating by golden correctness")
    right.legend()
    fig.suptitle(judge, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="a run config whose parameters.judge is the judge (default: local SmolLM2)")
    parser.add_argument("--data", default=str(PROJECT_ROOT / "data" / "routellm"))
    parser.add_argument("--mt-bench", type=int, default=80, help="MT-Bench judgements re-graded (both models of each question/turn)")
    parser.add_argument("--gsm8k", type=int, default=100, help="GSM8K answers graded (both models of each question)")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "reports" / "judge_agreement"))
    args = parser.parse_args(argv)

    import yaml

    section = {"backend": "local"}
    if args.config:
        section = (yaml.safe_load(Path(args.config).read_text()).get("parameters") or {}).get("judge") or {}
    config = JudgeConfig.from_dict(section, "judge")
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mt = mt_bench_sample(data / "mt_bench", args.mt_bench)
    gsm = gsm8k_sample(data / "gsm8k", args.gsm8k)
    prompts = [mt_bench_prompt(r) for _, r in mt.iterrows()] + [single_prompt(r["prompt"], r["answer"], r["reference"]) for _, r in gsm.iterrows()]

    started = time.perf_counter()
    judge = build_judge(config)
    loaded = time.perf_counter()
    report = JudgeReport(judge=judge.name, mode="single")
    cache = VerdictCache(config.cache_path())
    try:
        replies = ask(judge, cache, prompts, report)
    finally:
        cache.close()
    elapsed = time.perf_counter() - loaded
    ratings = [parse_rating(r.text) for r in replies]
    mt["rating"], gsm["rating"] = ratings[: len(mt)], ratings[len(mt) :]
    mt["rating"], gsm["rating"] = mt["rating"].astype(float), gsm["rating"].astype(float)

    by_category, pairs = mt_bench_tables(mt)
    gsm_summary = gsm8k_table(gsm)
    plot(mt, gsm, out / "judge_agreement.png", judge.identity)
    lines = [
        f"# Judge agreement: {judge.identity}",
        "",
        f"{cpu_model()}; model load {loaded - started:.0f} s, {report.requests} prompts asked ({report.cached} from the cache) in "
        f"{elapsed:.0f} s; {report.prompt_tokens:,} prompt and {report.completion_tokens:,} completion tokens.",
        "",
        f"## MT-Bench: {len(mt)} judgements re-graded, GPT-4's scores as reference",
        "",
        by_category.to_markdown(index=False, floatfmt=".3f"),
        "",
        f"Which model is better per question/turn (sign of the rating difference, ties included): judge and GPT-4 agree on "
        f"{pairs['agreement']:.3f} of {pairs['pairs']} pairs both graded; GPT-4 prefers GPT-4-1106 on {pairs['gpt4_prefers_strong']:.3f}, "
        f"the judge rates both alike on {pairs['judge_ties']:.3f}.",
        "",
        f"## GSM8K: {gsm_summary['answers']} answers, golden correctness as reference",
        "",
        pd.DataFrame([gsm_summary]).to_markdown(index=False, floatfmt=".3f"),
        "",
        f"accuracy: rating >= {CORRECT_FROM} read as correct; majority_baseline: always the commoner class.",
        f"Unparseable replies (no [[n]]): MT-Bench {int(mt['rating'].isna().sum())}, GSM8K {int(gsm['rating'].isna().sum())}.",
        "",
    ]
    (out / "judge_agreement.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
