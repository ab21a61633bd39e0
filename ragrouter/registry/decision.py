"""A promotion decision as a record: what was compared, on which queries, against which
champion, and why the version became champion or challenger. The same record comes from the
gate, from `ragrouter promote` and from `ragrouter rollback`; it is a ZenML artifact (JSON) and
MLflow tags on the version."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ragrouter.typed_config import TypedConfig

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass
class Comparison(TypedConfig):
    """One rule of the gate: the candidate's metric against another router's on the same
    queries, the 95% paired-bootstrap interval of (candidate - other), and the rule applied."""

    against: str  # "champion v3", "baseline knn"
    metric: str
    candidate: float
    other: float
    low: float
    high: float
    rule: str
    passed: bool

    def describe(self) -> str:
        return (
            f"{self.metric} {self.candidate:.4f} vs {self.against} {self.other:.4f}, "
            f"difference in [{self.low:+.4f}, {self.high:+.4f}]: {'passes' if self.passed else 'fails'} {self.rule}"
        )


@dataclass
class PromotionDecision(TypedConfig):
    """alias: where the version goes (champion or challenger); champion_read: the champion when
    the decision was made (the alias moves only if it still is); decided_by: `gate` or
    `manual by <user>`; queries: how many evaluated queries the comparisons rest on."""

    model_name: str
    version: str
    alias: str
    reason: str
    decided_by: str
    champion_read: str | None
    protocol: str | None = None
    split_fingerprint: str | None = None
    queries: int | None = None
    comparisons: list[Comparison] = field(default_factory=list)

    def tags(self) -> dict[str, str]:
        """The MLflow tags of the version that record this decision."""
        tags = {
            "promotion.decision": self.alias,
            "promotion.reason": self.reason,
            "promotion.decided_by": self.decided_by,
            "promotion.champion_read": self.champion_read or "none",
            "promotion.record": json.dumps(self.to_dict()),
        }
        for c in self.comparisons:
            against = c.against.split()[0]
            tags[f"promotion.{against}.{c.metric}"] = f"{c.other:.6f}"
            tags[f"promotion.{against}.{c.metric}.difference_interval"] = f"[{c.low:.6f}, {c.high:.6f}]"
        return tags

    def to_markdown(self) -> str:
        lines = [f"## {self.model_name} v{self.version} -> {self.alias}", "", self.reason, ""]
        lines.append(f"decided by {self.decided_by}; champion read: {self.champion_read or 'none'}")
        if self.queries is not None:
            lines.append(f"; {self.queries} queries of {self.protocol} (split {self.split_fingerprint})")
        if self.comparisons:
            lines += ["", "| against | metric | candidate | other | difference interval | rule | passed |", "|---|---|---|---|---|---|---|"]
            lines += [
                f"| {c.against} | {c.metric} | {c.candidate:.4f} | {c.other:.4f} | [{c.low:+.4f}, {c.high:+.4f}] | {c.rule} | {c.passed} |"
                for c in self.comparisons
            ]
        return "\n".join(lines) + "\n"
