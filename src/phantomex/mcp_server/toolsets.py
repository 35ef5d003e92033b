"""Which tools a server offers: every tool has a kind, a toolset admits some kinds."""

from __future__ import annotations

import enum


class Kind(enum.StrEnum):
    READ = "read"  # reads state; changes nothing
    RESEARCH = "research"  # backtests and optimisations: CPU, no money, no agent changes
    CONTROL = "control"  # changes agents without moving money: pause, resume, mode, kill switch
    MONEY = "money"  # moves money or may trade: deposit, trade now, orders, approvals, new agents


class Toolset(enum.StrEnum):
    """``full``: everything; ``no-money``: nothing that moves money or can trade;
    ``read-only``: reads only (research jobs' status and results included)."""

    FULL = "full"
    NO_MONEY = "no-money"
    READ_ONLY = "read-only"

    def admits(self, kind: Kind) -> bool:
        if self is Toolset.FULL:
            return True
        if self is Toolset.NO_MONEY:
            return kind is not Kind.MONEY
        return kind is Kind.READ
