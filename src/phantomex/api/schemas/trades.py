"""Response models of ``/api/trades``."""

from __future__ import annotations

from phantomex.service.records import TradePage, TradeView

__all__ = ["TradePage", "TradeView"]
