"""Response models of ``/api/market``."""

from __future__ import annotations

from phantomex.service.records import BarsView, BarView, PriceView, SuspectView

__all__ = ["BarView", "BarsView", "PriceView", "SuspectView"]
