// Equity curves: each agent's samples [{t (ms), v (equity), f (funding: allowance + deposits)}]
// from the server's history (GET /api/equity) and the live messages after it. Numbers are for
// drawing only. A return is equity against funding, so a deposit is not profit.

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

/** Samples kept per agent: the newest half at full detail, older ones thinned. */
export const MAX_POINTS = 1500;

/** A sample's value in `mode`: "usd" (equity) or "pct" (return on funding, in percent). */
export function valueOf(p, mode = 'usd') {
  if (mode !== 'pct') return p.v;
  return Number.isFinite(p.f) && p.f > 0 ? ((p.v - p.f) / p.f) * 100 : NaN;
}

/** Line data in UTC seconds, strictly ascending: the last sample of each second wins. */
export function equityLine(points = [], mode = 'usd') {
  const out = [];
  for (const p of points) {
    const value = valueOf(p, mode);
    if (!Number.isFinite(value) || !Number.isFinite(p?.t)) continue;
    const time = Math.floor(p.t / 1000);
    const last = out[out.length - 1];
    if (last && time < last.time) continue; // out of order: lightweight-charts would throw
    if (last && time === last.time) last.value = value;
    else out.push({ time, value });
  }
  return out;
}

/** Where funding rose (a deposit): [{time (UTC s), amount, index}], the allowance excluded. */
export function deposits(points = []) {
  const out = [];
  for (let i = 1; i < points.length; i += 1) {
    const rise = points[i].f - points[i - 1].f;
    if (Number.isFinite(rise) && rise > 0) {
      out.push({ time: Math.floor(points[i].t / 1000), amount: rise, index: i });
    }
  }
  return out;
}

/** Samples from the server's history of one agent ({points: [{time, equity, funding}]}). */
export function fromHistory(history) {
  const out = [];
  for (const p of history?.points || []) {
    const t = Date.parse(p.time);
    const v = Number(p.equity);
    const f = Number(p.funding);
    if (Number.isFinite(t) && Number.isFinite(v)) out.push({ t, v, f });
  }
  return out;
}

/** The history, then the live samples newer than its last one. */
export function mergeHistory(history, live = []) {
  if (!history.length) return live;
  const end = history[history.length - 1].t;
  const newer = live.filter((p) => p.t > end);
  return thin([...history, ...newer]);
}

/** At most `max` samples: while over, every other sample of the older half goes (deposits and
 * the ends stay), so the whole span remains at a coarser grain. */
export function thin(points, max = MAX_POINTS) {
  let out = points;
  while (out.length > max) {
    const half = Math.floor(out.length / 2);
    const kept = [];
    for (let i = 0; i < half; i += 1) {
      const p = out[i];
      const deposit = i > 0 && p.f !== out[i - 1].f;
      if (i === 0 || i % 2 === 0 || deposit) kept.push(p);
    }
    const next = kept.concat(out.slice(half));
    if (next.length === out.length) break;
    out = next;
  }
  return out;
}

/** The card's sparkline: profit (equity minus funding, so a deposit is not a jump), at most
 * about `max` evenly picked samples, the oldest and the newest always included. */
export function sparkPoints(points = [], max = 200) {
  const step = Math.max(1, Math.ceil(points.length / max));
  const picked = [];
  for (let i = points.length - 1; i >= 0; i -= step) picked.push(i);
  if (picked.length && picked[picked.length - 1] !== 0) picked.push(0);
  return picked.reverse().map((i) => {
    const p = points[i];
    return { t: p.t, v: p.v - (Number.isFinite(p.f) ? p.f : 0) };
  });
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
