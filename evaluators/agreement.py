"""How far an evaluator (an LLM judge above all) agrees with people: the confusion matrix of
its pass/fail against human 👍/👎 on the same calls, the share of agreement and Cohen's kappa.

Kappa corrects the raw agreement for what two raters would agree on by chance given how often
each says "pass": 1 is perfect agreement, 0 no better than chance, below 0 worse than chance.
The judge's failed evaluations (an unusable answer, a timeout) are counted apart: they are no
verdict, so they are neither agreement nor disagreement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Agreement", "cohen_kappa"]


def cohen_kappa(both_pass: int, judge_only: int, human_only: int, both_fail: int) -> float | None:
    """Cohen's kappa of a 2×2 table (judge pass & human 👍, judge pass & human 👎, judge fail &
    human 👍, both fail); None when it is undefined (no items, or both always say the same)."""
    n = both_pass + judge_only + human_only + both_fail
    if n == 0:
        return None
    observed = (both_pass + both_fail) / n
    judge_pass = (both_pass + judge_only) / n
    human_pass = (both_pass + human_only) / n
    chance = judge_pass * human_pass + (1 - judge_pass) * (1 - human_pass)
    if chance >= 1:
        return None
    return (observed - chance) / (1 - chance)


@dataclass(frozen=True)
class Agreement:
    """One evaluator version against human grades on the calls both graded."""

    evaluator: str
    version: str
    both_pass: int  # judge passed, human 👍
    judge_only: int  # judge passed, human 👎
    human_only: int  # judge failed the call, human 👍
    both_fail: int  # judge failed the call, human 👎
    judge_failures: int = 0  # the judge could not judge (error scores): not a verdict

    @property
    def calls(self) -> int:
        """Calls with both a judge verdict and a human grade."""
        return self.both_pass + self.judge_only + self.human_only + self.both_fail

    @property
    def agreement(self) -> float | None:
        return (self.both_pass + self.both_fail) / self.calls if self.calls else None

    @property
    def kappa(self) -> float | None:
        return cohen_kappa(self.both_pass, self.judge_only, self.human_only, self.both_fail)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "calls": self.calls,
            "agreement": self.agreement,
            "kappa": self.kappa,
        }
