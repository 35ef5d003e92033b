"""The offline demo: three rule agents with $10,000 paper wallets on the shipped dataset."""

from __future__ import annotations

from decimal import Decimal

from phantomex.domain.models import Mode
from phantomex.kernel.agent import AgentSpec
from phantomex.kernel.runtime import Kernel
from phantomex.risk.profile import RiskProfile

DEMO_AGENTS = [
    AgentSpec(
        name="Ruby RSI",
        brain="rsi",
        params={"period": 14, "oversold": 30, "overbought": 70},
        goal="Buy oversold dips, sell overbought rallies.",
        symbols=["BTC", "ETH", "SOL", "DOGE", "XRP"],
        interval_seconds=60,
        risk=RiskProfile(max_allocation_pct=Decimal(20)),
    ),
    AgentSpec(
        name="Max Momentum",
        brain="momentum",
        params={"fast": 5, "slow": 20, "ma": "ema"},
        goal="Ride short-term trends.",
        symbols=["BTC", "ETH", "SOL"],
        interval_seconds=60,
        risk=RiskProfile(max_allocation_pct=Decimal(30)),
    ),
    AgentSpec(
        name="Sam Spike-Fade",
        brain="spike_fade",
        params={"windows": [5, 15, 30], "spike_threshold_pct": 0.4, "cv_threshold": 0.05},
        goal="Fade sharp moves; a person approves each trade.",
        mode=Mode.ADVISORY,
        symbols=["DOGE", "SOL", "XRP"],
        interval_seconds=60,
    ),
]


def seed_demo(kernel: Kernel) -> int:
    """Create the demo agents on a database that has none; returns how many were created."""
    if kernel.agents:
        return 0
    for spec in DEMO_AGENTS:
        kernel.create_agent(spec)
    return len(DEMO_AGENTS)
