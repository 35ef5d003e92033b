"""Resources: the strategies with their parameter schemas, the risk defaults, the guide."""

from __future__ import annotations

import json

from phantomex.brains.registry import strategy_schemas
from phantomex.domain.risk import RiskProfile
from phantomex.mcp_server.guide import GUIDE
from phantomex.mcp_server.registry import PhantomexMCP


def register(mcp: PhantomexMCP) -> None:
    @mcp.resource(
        "phantomex://guide",
        name="guide",
        description="Read first: paper trading, risk controls, approvals, what is irreversible.",
        mime_type="text/markdown",
    )
    def guide() -> str:
        return GUIDE

    @mcp.resource(
        "phantomex://strategies",
        name="strategies",
        description="Every strategy an agent can run, with the JSON schema of its parameters.",
        mime_type="application/json",
    )
    def strategies() -> str:
        return json.dumps(strategy_schemas())

    @mcp.resource(
        "phantomex://risk/defaults",
        name="risk-defaults",
        description="The risk profile a new agent gets, and its JSON schema.",
        mime_type="application/json",
    )
    def risk_defaults() -> str:
        profile = RiskProfile()
        return json.dumps(
            {"defaults": profile.model_dump(mode="json"), "schema": RiskProfile.model_json_schema()}
        )
