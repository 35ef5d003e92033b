// Buy and sell markers of the price chart, from the trades the store holds (REST history and
// live `trade` WebSocket messages alike).

export const MAX_MARKERS = 400;

/**
 * Markers for `symbol` from newest-first `trades`, for a chart whose first bar opens at
 * `firstTime` (UTC seconds; 0 when the chart has no bars). A trade is placed on its 1-minute bar;
 * trades before the first bar are left out; a trade newer than the newest bar is kept (the chart
 * draws it on the newest bar until its own bar arrives). At most `max` markers, the newest ones,
 * sorted by time as lightweight-charts requires. Each marker's `id` is the trade's key.
 */
export function tradeMarkers(trades, symbol, firstTime, max = MAX_MARKERS) {
  const out = [];
  if (!symbol || !firstTime) return out;
  for (const t of trades) {
    if (t.symbol !== symbol) continue;
    const time = Math.floor(t.ms / 60000) * 60;
    if (!Number.isFinite(time) || time < firstTime) continue;
    const buy = t.side === 'buy';
    out.push({
      id: t.key,
      time,
      position: buy ? 'belowBar' : 'aboveBar',
      color: buy ? '#2ecc8f' : '#ff5c73',
      shape: buy ? 'arrowUp' : 'arrowDown',
      text: `${buy ? 'B' : 'S'} ${(t.agent_name || '').split(' ')[0]}`.trim(),
      side: t.side,
      agent_id: t.agent_id,
    });
    if (out.length >= max) break;
  }
  out.sort((a, b) => a.time - b.time);
  return out;
}

/** How many 1-minute bars to fetch to reach `nowSec` from `lastSec` without a gap (+2 so the
 * newest, still-forming bar and the one before it are refreshed too), within [3, cap]. */
export function tailLimit(lastSec, nowSec, cap = 1000) {
  if (!Number.isFinite(lastSec) || !Number.isFinite(nowSec) || !lastSec) return 3;
  const gap = Math.ceil((nowSec - lastSec) / 60) + 2;
  return Math.min(cap, Math.max(3, gap));
}
