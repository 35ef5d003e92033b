import { describe, expect, it } from 'vitest';
import { PALETTE, assignColours, equityLine } from '../src/lib/equity.js';

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
