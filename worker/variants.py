"""A/B variants of a playbook step: who gets which, and which one works better. Pure.

A step may list `variants` with weights. A member's variant is drawn from a hash of the
member and the sequence (and the step), so it never changes between retries, workers or
restarts, and the shares follow the weights. The worker records the variant it sent
(worker/store/variants.py); the dashboard counts, per variant, the emails sent, the
survey answers and the members who came back, and compares them:

- below MIN_SAMPLE emails sent in a variant: "too early to tell";
- otherwise the probability that each variant's rate is the best, from a Beta-binomial
  model (uniform prior): for two variants computed exactly (a finite sum), for more by a
  fixed-grid numerical integral. No randomness: the same figures give the same verdict.

The rate compared is the step's goal: survey answers for a transactional step (the
survey request), members who came back for a marketing one (the win-back).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from decimal import Decimal

from .playbook import Playbook, Step
from .store import Store

MIN_SAMPLE = 100  # emails sent per variant before any verdict
GRID = 2000  # integration points for three or more variants


def assign(step: Step, member_key: str, sequence_id: str) -> str:
    """The template this member gets for this step (the step's own without variants)."""
    if not step.variants:
        return step.template
    digest = hashlib.sha256(f"{member_key}|{sequence_id}|{step.id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % sum(v.weight for v in step.variants)
    for variant in step.variants:
        if point < variant.weight:
            return variant.template
        point -= variant.weight
    raise AssertionError("unreachable: weights are positive")


@dataclass(frozen=True)
class VariantStats:
    template: str
    weight: int
    sent: int
    answered: int
    came_back: int
    rejoin_clicks: int = 0
    recovered: dict[str, Decimal] = field(default_factory=dict)  # MRR won back, per currency

    def successes(self, goal: str) -> int:
        return self.answered if goal == "answered" else self.came_back

    def rate(self, goal: str) -> float | None:
        return self.successes(goal) / self.sent if self.sent else None


@dataclass(frozen=True)
class Verdict:
    ready: bool
    text: str
    best: dict[str, float]  # template -> probability its rate is the highest


def goal_of(step: Step) -> str:
    return "answered" if step.stream == "transactional" else "came_back"


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def prob_b_beats_a(a_wins: int, a_n: int, b_wins: int, b_n: int) -> float:
    """P(p_B > p_A) for p ~ Beta(1 + wins, 1 + losses), exactly: a finite sum over the
    B side's successes (the closed form for Beta variables with an integer parameter)."""
    alpha_a, beta_a = 1 + a_wins, 1 + a_n - a_wins
    alpha_b, beta_b = 1 + b_wins, 1 + b_n - b_wins
    total = 0.0
    for i in range(alpha_b):
        total += math.exp(
            _log_beta(alpha_a + i, beta_a + beta_b)
            - math.log(beta_b + i)
            - _log_beta(1 + i, beta_b)
            - _log_beta(alpha_a, beta_a)
        )
    return min(1.0, max(0.0, total))


def _beta_pdf_cdf(alpha: int, beta: int, grid: list[float]) -> tuple[list[float], list[float]]:
    log_norm = _log_beta(alpha, beta)
    pdf = [
        math.exp((alpha - 1) * math.log(x) + (beta - 1) * math.log(1 - x) - log_norm) for x in grid
    ]
    step = grid[1] - grid[0]
    cdf, running = [], 0.0
    for value in pdf:
        running += value * step
        cdf.append(min(1.0, running))
    return pdf, cdf


def prob_best(stats: list[VariantStats], goal: str) -> dict[str, float]:
    """Probability that each variant's rate is the highest."""
    if len(stats) == 2:
        a, b = stats
        p = prob_b_beats_a(a.successes(goal), a.sent, b.successes(goal), b.sent)
        return {a.template: 1 - p, b.template: p}
    grid = [(k + 0.5) / GRID for k in range(GRID)]
    curves = [
        _beta_pdf_cdf(1 + s.successes(goal), 1 + s.sent - s.successes(goal), grid) for s in stats
    ]
    out = {}
    for i, s in enumerate(stats):
        pdf = curves[i][0]
        total = 0.0
        for k in range(GRID):
            others = 1.0
            for j, (_, cdf) in enumerate(curves):
                if j != i:
                    others *= cdf[k]
            total += pdf[k] * others / GRID
        out[s.template] = total
    norm = sum(out.values()) or 1.0
    return {t: v / norm for t, v in out.items()}


def verdict(stats: list[VariantStats], goal: str, min_sample: int = MIN_SAMPLE) -> Verdict:
    """In plain words: too early, or how likely each variant is the better one."""
    what = "answered the survey" if goal == "answered" else "came back"
    short = [s for s in stats if s.sent < min_sample]
    if short:
        return Verdict(
            False,
            f"Too early to tell: every variant needs at least {min_sample} emails sent "
            f"({', '.join(f'{s.template} has {s.sent}' for s in short)}).",
            {},
        )
    best = prob_best(stats, goal)
    leader = max(best, key=lambda t: best[t])
    chance = best[leader]
    if chance >= 0.95:
        head = f"{leader} works better"
    elif chance >= 0.8:
        head = f"{leader} is probably better"
    else:
        head = "No clear winner yet"
    odds = "more than 99%" if chance > 0.99 else f"{chance:.0%}"
    return Verdict(
        True,
        f"{head}: a {odds} chance that more members {what} with {leader} "
        "than with the other variant(s).",
        best,
    )


@dataclass(frozen=True)
class ABTest:
    step: str
    memberships: str  # "default" or "membership 3006"
    goal: str
    stats: list[VariantStats]
    verdict: Verdict


def gather(store: Store, playbook: Playbook) -> list[ABTest]:
    """Every step with variants in the playbook, with its figures from Redis."""
    tests = []
    tables = [("default", playbook.default)] + [
        (f"membership {mid}", steps) for mid, steps in sorted(playbook.memberships.items())
    ]
    for where, steps in tables:
        for step in steps:
            if not step.variants:
                continue
            stats = [
                VariantStats(v.template, v.weight, *store.variant_outcomes(step.id, v.template))
                for v in step.variants
            ]
            goal = goal_of(step)
            tests.append(ABTest(step.id, where, goal, stats, verdict(stats, goal)))
    return tests
