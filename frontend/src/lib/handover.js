// A replay that went live (GET /api/sessions/{id}: window.parts and window.handover_at): its
// replay part and its live part, for the session view.

/** "as fast as it can" for speed 0 (a replay catching up to the present), else "60×". */
export function speedLabel(speed) {
  const n = Number(speed);
  if (!Number.isFinite(n) || n <= 0) return 'as fast as it can';
  return `${n}×`;
}

/** The two parts of a session that went live, or null for any other session. */
export function handoverParts(session) {
  const window = session?.window;
  const parts = window?.parts;
  if (!Array.isArray(parts) || parts.length !== 2) return null;
  const [replay, live] = parts;
  const dataset = session.spec?.replay?.dataset;
  return {
    replay: {
      source: dataset ? `dataset ${dataset}` : replay.source,
      from: replay.start,
      to: replay.end,
      speed: speedLabel(session.spec?.replay?.speed ?? 0),
      ticks: replay.ticks,
      bars: replay.bars,
      bridged: replay.bridge_bars ?? window.bridge_bars ?? 0,
    },
    live: {
      source: live.source || session.spec?.then_live?.source || '',
      since: live.start,
      until: live.end,
      ticks: live.ticks,
      bars: live.bars,
    },
    handoverAt: window.handover_at || null,
    gaps: (window.gaps || []).length,
    duplicates: window.duplicates ?? 0,
  };
}
