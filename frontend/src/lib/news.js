// News for the dashboard's panel (GET /api/news). Headlines, summaries and links come from the
// feeds: they are data ({untrusted_text}), shown as text and never as HTML.

/** The text of an API field marked untrusted ("" when absent). */
export function untrusted(field) {
  return typeof field?.untrusted_text === 'string' ? field.untrusted_text : '';
}

/** A link safe to put in an href: http(s) only (never javascript:, data:, ...), else null. */
export function safeLink(field) {
  const text = untrusted(field);
  if (!text) return null;
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/** The path of the newest items, about one symbol if given. */
export function newsPath(symbol, limit = 50) {
  const params = new URLSearchParams({ limit: String(limit) });
  if (symbol) params.set('symbol', symbol);
  return `/api/news?${params}`;
}

/** Symbols to filter by: the market's and every loaded item's, sorted. */
export function newsSymbols(marketSymbols, items) {
  const set = new Set(marketSymbols || []);
  for (const item of items || []) for (const s of item.symbols || []) set.add(s);
  return [...set].sort();
}

/** "wire: 3 read, 1 new" lines of a POST /api/news/fetch answer. */
export function fetchSummary(result) {
  return (result?.reports || [])
    .map((r) => (r.error ? `${r.source}: ${r.error}` : `${r.source}: ${r.read} read, ${r.new} new`))
    .join(' · ');
}
