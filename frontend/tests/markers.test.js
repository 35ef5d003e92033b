import { describe, expect, it } from 'vitest';
import { MAX_MARKERS, tailLimit, tradeMarkers } from '../src/lib/markers.js';
import { normaliseTrade } from '../src/lib/reducer.js';

const T0 = Date.UTC(2023, 3, 1, 12, 0) / 1000; // first bar of the chart

const trade = (i, minute, extra = {}) =>
  normaliseTrade({
    agent_id: 'a1',
    agent_name: 'Ruby RSI',
    symbol: 'BTC',
    side: i % 2 ? 'sell' : 'buy',
    quantity: '0.1',
    price: '27000',
    time: new Date((T0 + minute * 60 + 17) * 1000).toISOString(),
    idempotency_key: `k${i}`,
    ...extra,
  });

describe('chart markers', () => {
  it('places trades of the symbol on their bar, sorted by time, with the trade key as id', () => {
    const trades = [trade(0, 5), trade(1, 3), trade(2, 1, { symbol: 'ETH' })]; // newest first
    const m = tradeMarkers(trades, 'BTC', T0);
    expect(m.map((x) => x.id)).toEqual(['k1', 'k0']);
    expect(m[0]).toMatchObject({ time: T0 + 180, shape: 'arrowDown', position: 'aboveBar', text: 'S Ruby' });
    expect(m[1]).toMatchObject({ time: T0 + 300, shape: 'arrowUp', position: 'belowBar', text: 'B Ruby' });
  });

  it('leaves out trades before the first bar and keeps ones newer than the last bar', () => {
    const m = tradeMarkers([trade(0, 10_000), trade(1, -1)], 'BTC', T0);
    expect(m.map((x) => x.id)).toEqual(['k0']);
    expect(tradeMarkers([trade(0, 1)], 'BTC', 0)).toEqual([]); // no bars yet
    expect(tradeMarkers([trade(0, 1)], null, T0)).toEqual([]);
  });

  it('keeps the newest markers up to the cap', () => {
    const trades = Array.from({ length: MAX_MARKERS + 50 }, (_, i) => trade(i, MAX_MARKERS + 50 - i));
    const m = tradeMarkers(trades, 'BTC', T0);
    expect(m).toHaveLength(MAX_MARKERS);
    expect(m[m.length - 1].id).toBe('k0');
    expect(m[0].time).toBeLessThanOrEqual(m[1].time);
  });

  it('fetches enough bars to close the gap since the newest bar', () => {
    expect(tailLimit(T0, T0 + 30)).toBe(3);
    expect(tailLimit(T0, T0 + 600)).toBe(12); // 10 bars at speed 600 in one second
    expect(tailLimit(T0, T0 + 86400 * 7)).toBe(1000);
    expect(tailLimit(0, T0)).toBe(3);
  });
});
