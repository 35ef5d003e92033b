"""Response models of ``/api/decisions`` and an agent's decisions."""

from __future__ import annotations

from phantomex.service.records import DecisionView

__all__ = ["DecisionView"]
