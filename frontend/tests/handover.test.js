import { describe, expect, it } from 'vitest';
import { handoverParts, speedLabel } from '../src/lib/handover.js';

const session = {
  spec: { replay: { speed: 0, dataset: 'bn' }, then_live: { source: 'coingecko' } },
  window: {
    parts: [
      { source: 'dataset:bn', start: '2026-11-03T09:00:00Z', end: '2026-11-03T11:55:00Z', ticks: 36, bars: 36, bridge_bars: 4 },
      { source: 'coingecko', start: '2026-11-03T12:00:00Z', end: null, ticks: 3, bars: 3 },
    ],
    handover_at: '2026-11-03T12:00:00Z',
    gaps: [],
    duplicates: 0,
  },
};

describe('replay, then live', () => {
  it('reads the two parts and the hand-over', () => {
    const p = handoverParts(session);
    expect(p.replay).toMatchObject({ source: 'dataset bn', from: '2026-11-03T09:00:00Z', to: '2026-11-03T11:55:00Z', speed: 'as fast as it can', bridged: 4 });
    expect(p.live).toMatchObject({ source: 'coingecko', since: '2026-11-03T12:00:00Z', ticks: 3 });
    expect(p.handoverAt).toBe('2026-11-03T12:00:00Z');
    expect(p.gaps).toBe(0);
  });
  it('is null for a session that did not go live', () => {
    expect(handoverParts({ window: { source: 'dataset:demo' } })).toBeNull();
    expect(handoverParts(null)).toBeNull();
  });
  it('labels the speed', () => {
    expect(speedLabel(0)).toBe('as fast as it can');
    expect(speedLabel(60)).toBe('60×');
  });
});
