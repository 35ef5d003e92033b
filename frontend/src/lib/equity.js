// Equity curves for the multi-agent line chart: the store's per-agent equity samples
// ([{t (ms), v}], the same the sparklines draw) as lightweight-charts line data.

export const PALETTE = [
  '#4f9dff',
  '#f5a623',
  '#2ecc8f',
  '#ff5c73',
  '#b57bff',
  '#3fd0d9',
  '#e8e15a',
  '#ff8fd0',
  '#9bc53d',
  '#c08552',
];

/** Line data in UTC seconds, strictly ascending: the last sample of each second wins. */
export function equityLine(points = []) {
  const out = [];
  for (const p of points) {
    if (!Number.isFinite(p?.v) || !Number.isFinite(p?.t)) continue;
    const time = Math.floor(p.t / 1000);
    const last = out[out.length - 1];
    if (last && time < last.time) continue; // out of order: lightweight-charts would throw
    if (last && time === last.time) last.value = p.v;
    else out.push({ time, value: p.v });
  }
  return out;
}

/** A stable colour per agent id: kept while the agent lives, the first free one for a new one. */
export function assignColours(ids, previous = {}) {
  const next = {};
  const used = new Set();
  for (const id of ids) {
    if (previous[id]) {
      next[id] = previous[id];
      used.add(previous[id]);
    }
  }
  let i = 0;
  for (const id of ids) {
    if (next[id]) continue;
    const free = PALETTE.find((c) => !used.has(c));
    next[id] = free || PALETTE[i++ % PALETTE.length];
    used.add(next[id]);
  }
  return next;
}
