// Pure helpers of the trade log: filtering, sorting and the virtual window.
import { toNumber } from './decimal.js';

export const COLUMNS = [
  { key: 'time', label: 'Time', numeric: false },
  { key: 'agent_name', label: 'Agent', numeric: false },
  { key: 'symbol', label: 'Symbol', numeric: false },
  { key: 'side', label: 'Side', numeric: false },
  { key: 'quantity', label: 'Quantity', numeric: true },
  { key: 'price', label: 'Price', numeric: true },
  { key: 'notional', label: 'Notional', numeric: true },
  { key: 'fee', label: 'Fee', numeric: true },
  { key: 'realized_pnl', label: 'Realized P&L', numeric: true },
];

export function filterTrades(trades, { agentId = '', symbol = '' } = {}) {
  if (!agentId && !symbol) return trades;
  return trades.filter(
    (t) => (!agentId || t.agent_id === agentId) && (!symbol || t.symbol === symbol),
  );
}

/** Sorted copy (numbers for ordering only, blanks last); "time desc" keeps the given
 * newest-first order. */
export function sortTrades(trades, key = 'time', dir = 'desc') {
  if (key === 'time') return dir === 'desc' ? trades : [...trades].reverse();
  const col = COLUMNS.find((c) => c.key === key);
  const sign = dir === 'asc' ? 1 : -1;
  const keyed = trades.map((t, i) => ({
    t,
    i,
    k: col && col.numeric ? toNumber(t[key]) : String(t[key] ?? '').toLowerCase(),
  }));
  keyed.sort((a, b) => {
    const gapA = Number.isNaN(a.k);
    const gapB = Number.isNaN(b.k);
    if (gapA || gapB) return gapA === gapB ? a.i - b.i : gapA ? 1 : -1; // blanks last
    if (a.k < b.k) return -sign;
    if (a.k > b.k) return sign;
    return a.i - b.i; // stable: newest first among equals
  });
  return keyed.map((x) => x.t);
}

/** Which rows to render: [start, end) with `overscan` extra rows on each side. */
export function virtualWindow(count, scrollTop, viewport, rowHeight, overscan = 8) {
  if (count <= 0) return { start: 0, end: 0, padTop: 0, padBottom: 0 };
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const visible = Math.ceil(Math.max(viewport, rowHeight) / rowHeight);
  const start = Math.max(0, Math.min(count - 1, first - overscan));
  const end = Math.min(count, first + visible + overscan);
  return {
    start,
    end: Math.max(end, start),
    padTop: start * rowHeight,
    padBottom: Math.max(0, (count - Math.max(end, start)) * rowHeight),
  };
}
