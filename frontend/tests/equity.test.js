import { describe, expect, it } from 'vitest';
import {
  MAX_POINTS,
  PALETTE,
  assignColours,
  deposits,
  equityLine,
  fromHistory,
  mergeHistory,
  sparkPoints,
  thin,
  valueOf,
} from '../src/lib/equity.js';
import { initialState, reduce } from '../src/lib/reducer.js';

describe('equityLine', () => {
  it('converts ms samples to ascending seconds, last sample of a second wins', () => {
    const pts = [
      { t: 1000, v: 1 },
      { t: 1500, v: 2 },
      { t: 3000, v: 3 },
      { t: 2000, v: 9 }, // out of order: dropped
      { t: 4000, v: NaN },
    ];
    expect(equityLine(pts)).toEqual([
      { time: 1, value: 2 },
      { time: 3, value: 3 },
    ]);
    expect(equityLine()).toEqual([]);
  });

  it('draws the return on funding in percent, so a deposit is not profit', () => {
    const pts = [
      { t: 0, v: 10_000, f: 10_000 },
      { t: 60_000, v: 10_100, f: 10_000 }, // +1%
      { t: 120_000, v: 12_625, f: 12_500 }, // 2,500 deposited: still +1%
    ];
    expect(equityLine(pts, 'pct').map((p) => p.value)).toEqual([0, 1, 1]);
    expect(equityLine(pts, 'usd').map((p) => p.value)).toEqual([10_000, 10_100, 12_625]);
    expect(valueOf({ v: 5, f: 0 }, 'pct')).toBeNaN();
  });
});

describe('deposits', () => {
  it('are where funding rose, the allowance excluded', () => {
    const pts = [
      { t: 0, v: 500, f: 500 },
      { t: 60_000, v: 510, f: 500 },
      { t: 90_000, v: 1_510, f: 1_500 },
      { t: 120_000, v: 1_520, f: 1_500 },
    ];
    expect(deposits(pts)).toEqual([{ time: 90, amount: 1000, index: 2 }]);
    expect(deposits([])).toEqual([]);
  });
});

describe('history', () => {
  const history = {
    agent_id: 'a1',
    points: [
      { time: '2023-04-01T10:00:00Z', equity: '10000', funding: '10000' },
      { time: '2023-04-01T10:05:00Z', equity: '10020.5', funding: '10000' },
    ],
  };

  it('comes first, then the live samples newer than it', () => {
    const samples = fromHistory(history);
    expect(samples.map((p) => p.v)).toEqual([10_000, 10_020.5]);
    const end = Date.parse('2023-04-01T10:05:00Z');
    const live = [
      { t: end - 1000, v: 1, f: 1 }, // already in the history
      { t: end + 60_000, v: 10_030, f: 10_000 },
    ];
    expect(mergeHistory(samples, live).map((p) => p.v)).toEqual([10_000, 10_020.5, 10_030]);
    expect(mergeHistory([], live)).toBe(live);
  });

  it('loads into the store after a reload, for known agents only', () => {
    let s = reduce(initialState(), {
      type: 'snapshot',
      ts: '2023-04-01T10:06:00Z',
      data: {
        agents: [{ id: 'a1', name: 'A', wallet: { cash: '10030', funding: '10000', equity: '10030', positions: [] } }],
        prices: [],
      },
    });
    expect(s.equity.a1).toHaveLength(1); // what a reload had before: the snapshot's sample
    s = reduce(s, { type: 'local/equity', agents: [history, { ...history, agent_id: 'gone' }] });
    expect(s.equity.a1.map((p) => p.v)).toEqual([10_000, 10_020.5, 10_030]);
    expect(s.equity.gone).toBeUndefined();
    expect(s.equity.a1.at(-1).f).toBe(10_000);
  });
});

describe('thin', () => {
  it('keeps the span, the newest half and every deposit', () => {
    const pts = Array.from({ length: MAX_POINTS + 1 }, (_, i) => ({ t: i, v: i, f: i === 7 ? 2 : 1 }));
    const out = thin(pts);
    expect(out.length).toBeLessThanOrEqual(MAX_POINTS);
    expect(out[0]).toBe(pts[0]);
    expect(out.at(-1)).toBe(pts.at(-1));
    expect(out.some((p) => p.t === 7)).toBe(true);
    expect(out.some((p) => p.t === 8)).toBe(true); // where funding fell back (a drop, not a deposit)
    expect(out.slice(-700).map((p) => p.t)).toEqual(pts.slice(-700).map((p) => p.t));
  });
});

describe('sparkPoints', () => {
  it('draws profit (deposits are not a jump) with at most max points', () => {
    const pts = [
      { t: 0, v: 100, f: 100 },
      { t: 1, v: 110, f: 100 },
      { t: 2, v: 1110, f: 1100 },
    ];
    expect(sparkPoints(pts).map((p) => p.v)).toEqual([0, 10, 10]);
    const many = Array.from({ length: 1000 }, (_, i) => ({ t: i, v: i, f: 0 }));
    const few = sparkPoints(many, 100);
    expect(few.length).toBeLessThanOrEqual(101);
    expect(few.at(-1).t).toBe(999);
    expect(few[0].t).toBe(0); // the whole span
  });
});

describe('assignColours', () => {
  it('keeps colours stable and gives new agents a free one', () => {
    const a = assignColours(['a', 'b']);
    expect(a).toEqual({ a: PALETTE[0], b: PALETTE[1] });
    const b = assignColours(['b', 'c'], a);
    expect(b.b).toBe(PALETTE[1]);
    expect(b.c).toBe(PALETTE[0]);
    const many = assignColours(Array.from({ length: 12 }, (_, i) => `x${i}`));
    expect(Object.keys(many)).toHaveLength(12);
  });
});
