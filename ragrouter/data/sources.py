"""Where routing records come from: one typed, serializable config per data source.

A run config lists sources as plain dicts (YAML); `SourceConfig.from_dict` turns each into a
checked dataclass so that a typo in a key or a kind fails at load time, not halfway through a
pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ragrouter.data.records import LABEL_KINDS
from ragrouter.typed_config import TypedConfig

SourceKind = Literal["routellm_mmlu", "routellm_gsm8k", "mt_bench", "table", "folder", "hf_dataset"]
SOURCE_KINDS: tuple[str, ...] = ("routellm_mmlu", "routellm_gsm8k", "mt_bench", "table", "folder", "hf_dataset")
ROUTELLM_KINDS: tuple[str, ...] = ("routellm_mmlu", "routellm_gsm8k", "mt_bench")
DIRECTORY_KINDS: tuple[str, ...] = ("routellm_mmlu", "mt_bench")  # `path` is a folder of files
ROUTELLM_STRONG = "gpt-4-1106-preview"
ROUTELLM_WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
CONFLICT_POLICIES: tuple[str, ...] = ("keep", "drop")


@dataclass
class SourceConfig(TypedConfig):
    """One source of routing records and how to read it.

    Fields:
        name: the `source` value of its records (e.g. "mmlu"); also the default `group`.
        kind: "routellm_mmlu" (a directory; every `mmlu_<subject>.csv` in it, subject =
            group), "routellm_gsm8k" (one CSV file), "mt_bench" (a directory holding MT-Bench's
            `question.jsonl` and GPT-4's `judgements.jsonl`: one record per question and turn,
            quality = score / 10, category = group), "table" (a CSV, JSONL or Parquet file,
            format from the suffix), "folder" (every *.csv, *.jsonl and *.parquet file in a
            directory, read as tables with the same columns: new outcome files dropped there,
            such as exported gateway feedback, are read by the next run; an empty folder gives
            no records) or "hf_dataset" (a Hugging Face dataset: a hub name read at `revision`,
            a `save_to_disk` folder, or Parquet files; columns as for "table").
        path: the directory or file (or hub name), as given (kept verbatim in `origin_file`).
        prompt_column: column holding the prompt text.
        strong_column / weak_column: the strong and weak model's quality columns (booleans or
            numbers in [0, 1]); RouteLLM kinds default to GPT-4 and Mixtral; other kinds need them
            unless they give both responses for a judge to grade. For "mt_bench" they are the
            `model` names whose judgements are read.
        strong_response_column / weak_response_column: optional columns holding each model's
            answer; a table with these and no quality columns is graded by the run's `judge`
            (label_kind "judge").
        reference_column: optional column holding a reference answer the judge compares with.
        group_column: optional column holding each record's group ("mt_bench": "category").
        label_kind: "golden" (correctness) or "judge" (a scaled judge grade); "mt_bench"
            defaults to "judge", every other kind to "golden".
        contaminated_path: optional JSONL whose `eval_prompt` values are dropped; RouteLLM
            kinds default to `contaminated_prompts.jsonl` beside the data.
        conflicting_duplicates: what to do with a prompt seen twice with different outcomes:
            "keep" (validation then reports it) or "drop".
        sample_fraction: keep only prompts with prompt_hash % 10000 < fraction * 10000, a
            deterministic subset for tests and quick runs; None keeps all.
        revision: "hf_dataset" from the hub only: the commit, tag or branch to read (required
            there, so that a run reads the same rows tomorrow).
        split: "hf_dataset" only: the split to read ("train").
    """

    name: str
    kind: SourceKind
    path: str
    prompt_column: str = "prompt"
    strong_column: str | None = None
    weak_column: str | None = None
    group_column: str | None = None
    strong_response_column: str | None = None
    weak_response_column: str | None = None
    reference_column: str | None = None
    label_kind: str | None = None
    contaminated_path: str | None = None
    conflicting_duplicates: Literal["keep", "drop"] = "keep"
    sample_fraction: float | None = None
    revision: str | None = None
    split: str = "train"

    def __post_init__(self) -> None:
        _check_choice("kind", self.kind, SOURCE_KINDS)
        self.label_kind = self.label_kind or ("judge" if self.kind == "mt_bench" else "golden")
        _check_choice("label_kind", self.label_kind, LABEL_KINDS)
        _check_choice("conflicting_duplicates", self.conflicting_duplicates, CONFLICT_POLICIES)
        if not self.name:
            raise ValueError("source 'name' must not be empty")
        if bool(self.strong_response_column) != bool(self.weak_response_column):
            raise ValueError(
                f"source {self.name!r}: give both strong_response_column and weak_response_column, or neither"
            )
        if self.kind in ROUTELLM_KINDS:
            self.strong_column = self.strong_column or ROUTELLM_STRONG
            self.weak_column = self.weak_column or ROUTELLM_WEAK
        if self.kind == "mt_bench":
            self.group_column = self.group_column or "category"
        elif self.judged:
            if self.label_kind != "judge":
                raise ValueError(f"source {self.name!r}: a source without quality columns needs label_kind: judge")
        elif not self.strong_column or not self.weak_column:
            raise ValueError(
                f"source {self.name!r}: a {self.kind!r} source needs strong_column and weak_column "
                "(or strong_response_column and weak_response_column for a judge to grade)"
            )
        if self.strong_column is not None and self.strong_column == self.weak_column:
            raise ValueError(
                f"source {self.name!r}: strong_column and weak_column are both "
                f"{self.strong_column!r}; the two models' qualities must come from two columns"
            )
        if self.sample_fraction is not None and not 0 < self.sample_fraction <= 1:
            raise ValueError(
                f"source {self.name!r}: sample_fraction must be in (0, 1], "
                f"got {self.sample_fraction}"
            )

    @property
    def judged(self) -> bool:
        """Whether a judge grades its records: it gives responses and no quality columns."""
        return self.kind not in ROUTELLM_KINDS and bool(self.strong_response_column) and not (self.strong_column or self.weak_column)

    def contaminated_file(self) -> Path | None:
        """The contamination list to apply: the configured one, or RouteLLM's default."""
        if self.contaminated_path is not None:
            return Path(self.contaminated_path)
        if self.kind not in ROUTELLM_KINDS:
            return None
        data_dir = Path(self.path) if self.kind in DIRECTORY_KINDS else Path(self.path).parent
        return data_dir / "contaminated_prompts.jsonl"


def _check_choice(key: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"source config {key!r} must be one of {list(allowed)}, got {value!r}")


def model_names(sources: list[SourceConfig]) -> tuple[str, str]:
    """The strong and weak models' names as the data names them: the first source's quality
    columns, or its response columns where a judge grades it."""
    if not sources:
        raise ValueError("no sources configured")
    first = sources[0]
    return str(first.strong_column or first.strong_response_column), str(first.weak_column or first.weak_response_column)
