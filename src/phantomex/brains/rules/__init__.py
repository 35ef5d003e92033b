"""Rule brains: deterministic strategies driven by technical indicators."""

from phantomex.brains.rules.momentum import MomentumBrain, MomentumParams
from phantomex.brains.rules.rsi import RsiBrain, RsiParams
from phantomex.brains.rules.spike_fade import SpikeFadeBrain, SpikeFadeParams
from phantomex.brains.rules.train_of_trade import TrainOfTradeBrain, TrainOfTradeParams

__all__ = [
    "MomentumBrain",
    "MomentumParams",
    "RsiBrain",
    "RsiParams",
    "SpikeFadeBrain",
    "SpikeFadeParams",
    "TrainOfTradeBrain",
    "TrainOfTradeParams",
]
