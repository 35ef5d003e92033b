"""A protocol-faithful stand-in for IB Gateway: a paper account behind the TWS socket API.

It speaks the messages ib_async really exchanges (the ``API\\0`` handshake at server version 176,
startApi, nextValidId, managedAccounts, contract details, place/cancel order, openOrder and
orderStatus, execDetails with commission reports, positions, account updates and summary,
market data type and ticks, executions, errors), field for field as ib_async's encoder writes
and its decoder reads them. Scriptable per order (:mod:`.behaviour`: fills, partial fills,
rejections, a disconnect before the answer) and restartable mid-order: the account lives in a
JSON file like a real account lives at IB.

Modules: :mod:`.wire` (framing), :mod:`.messages` (message layouts), :mod:`.account` (the
persisted account), :mod:`.state` (shared state, executions), :mod:`.session` (one client
connection), :mod:`.server` (the threaded server)."""

from phantomex.devtools.ib_gateway.behaviour import Disconnect, Fill, Hold, Partial, Reject
from phantomex.devtools.ib_gateway.server import IBGateway

__all__ = ["Disconnect", "Fill", "Hold", "IBGateway", "Partial", "Reject"]
