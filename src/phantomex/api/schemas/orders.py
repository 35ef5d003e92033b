"""Response models of ``/api/orders`` (a placed order answers with its decision)."""

from __future__ import annotations

from phantomex.service.records import DecisionView, OrderView

__all__ = ["DecisionView", "OrderView"]
