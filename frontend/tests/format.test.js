import { afterEach, describe, expect, it } from 'vitest';
import {
  fmtBytes,
  fmtClock,
  fmtCount,
  fmtDateTime,
  fmtLatency,
  fmtMoney,
  fmtNumber,
  fmtPct,
  fmtPrice,
  fmtQty,
  fmtRange,
  fmtRatio,
  fmtReturn,
  fmtTime,
  learnPrecision,
  pricePlaces,
  resetPrecision,
} from '../src/lib/format.js';

const M = '\u2212';

afterEach(() => resetPrecision());

describe('prices', () => {
  it('keep at least 4 significant digits for small prices', () => {
    expect(fmtPrice('0.5095')).toBe('0.5095'); // XRP, not 0.51
    expect(fmtPrice('0.08206')).toBe('0.08206'); // DOGE
    expect(fmtPrice('0.0000123456')).toBe('0.00001235');
    expect(fmtPrice('21.17')).toBe('21.17');
    expect(fmtPrice('28436.34')).toBe('28,436.34');
    expect(fmtPrice('1850.5')).toBe('1,850.50');
    expect(fmtPrice(0.5095)).toBe('0.5095'); // a JSON number too
  });

  it('use the precision the instrument is quoted in', () => {
    learnPrecision('XRP', '0.5082');
    learnPrecision('XRP', '0.51'); // fewer decimals do not lower it
    expect(pricePlaces('0.50975475', 'XRP')).toBe(4);
    expect(fmtPrice('0.50975475', 'XRP')).toBe('0.5098'); // a fill with slippage
    expect(fmtPrice('0.51', 'XRP')).toBe('0.5100');
    learnPrecision('BTC', '28436.3');
    expect(fmtPrice('28436.3', 'BTC')).toBe('28,436.30'); // never fewer than 2
    learnPrecision('ETH', '1850.123456789012'); // float noise is not a tick size
    expect(fmtPrice('1850.123456789012', 'ETH')).toBe('1,850.12');
  });

  it('show nothing for a missing or broken price', () => {
    expect(fmtPrice(null)).toBe('–');
    expect(fmtPrice(undefined)).toBe('–');
    expect(fmtPrice('abc')).toBe('–');
  });
});

describe('money', () => {
  it('has the currency, separators and a real minus sign', () => {
    expect(fmtMoney('10000')).toBe('$10,000.00');
    expect(fmtMoney('-3.24')).toBe(`${M}$3.24`); // not "$-3.24"
    expect(fmtMoney('-3.245')).toBe(`${M}$3.25`); // half away from zero
    expect(fmtMoney('12.5', { signed: true })).toBe('+$12.50');
    expect(fmtMoney('0', { signed: true })).toBe('$0.00');
    expect(fmtMoney('-1234567.891')).toBe(`${M}$1,234,567.89`);
    expect(fmtMoney('5', { currency: 'EUR' })).toBe('€5.00');
    expect(fmtMoney('5', { currency: 'USDC' })).toBe('5.00 USDC');
    expect(fmtMoney(null)).toBe('–');
  });

  it('is exact on long decimals', () => {
    expect(fmtMoney('10000.004999999999999999')).toBe('$10,000.00');
    expect(fmtMoney('0.005')).toBe('$0.01');
  });
});

describe('returns and ratios', () => {
  it('are percent with a sign', () => {
    expect(fmtPct('1.234')).toBe('+1.23%');
    expect(fmtPct('-0.4')).toBe(`${M}0.40%`);
    expect(fmtPct('0')).toBe('0.00%');
    expect(fmtReturn(0.0123)).toBe('+1.23%');
    expect(fmtReturn(-0.5)).toBe(`${M}50.00%`);
    expect(fmtReturn(1e-7, 4)).toBe('0.0000%');
    expect(fmtReturn(2e-5, 4)).toBe('+0.0020%');
    expect(fmtReturn(0.07, 0)).toBe('+7%');
    expect(fmtReturn(null)).toBe('–');
    expect(fmtReturn(NaN)).toBe('–');
  });

  it('Sharpe reads as a signed number', () => {
    expect(fmtRatio(-143.751)).toBe(`${M}143.75`);
    expect(fmtRatio(0.0412, 3)).toBe('0.041');
    expect(fmtRatio(null)).toBe('–');
  });

  it('counts and numbers are grouped', () => {
    expect(fmtCount(12345)).toBe('12,345');
    expect(fmtNumber('-0.5', 1)).toBe(`${M}0.5`);
    expect(fmtQty('0.12345600')).toBe('0.123456');
    expect(fmtQty('1500')).toBe('1,500');
  });
});

describe('latencies, durations and times', () => {
  it('latencies in ms below a second', () => {
    expect(fmtLatency(0.0116)).toBe('11.6 ms');
    expect(fmtLatency(0.25)).toBe('250 ms');
    expect(fmtLatency(0.002345)).toBe('2.35 ms');
    expect(fmtLatency(1.2345)).toBe('1.23 s');
    expect(fmtLatency(125.4)).toBe('125 s');
    expect(fmtLatency(0.1)).toBe('100 ms');
    expect(fmtLatency(2)).toBe('2 s');
    expect(fmtLatency(null)).toBe('–');
  });

  it('times never show microseconds', () => {
    expect(fmtDateTime('2023-04-01T22:25:00.123456Z')).toBe('2023-04-01 22:25:00');
    expect(fmtDateTime('2023-04-01T22:25:00.999999+00:00')).toBe('2023-04-01 22:25:00');
    expect(fmtTime('2023-04-01T22:25:07.5Z')).toBe('22:25:07');
    expect(fmtDateTime('nope')).toBe('–');
    expect(fmtRange('2023-04-10T00:00:00+00:00', '2023-04-10T02:00:00+00:00')).toBe(
      '2023-04-10 00:00 → 02:00 UTC',
    );
    expect(fmtRange('2023-04-10T00:00:00Z', '2023-04-11T00:00:00Z')).toBe(
      '2023-04-10 00:00 → 2023-04-11 00:00 UTC',
    );
  });

  it('durations and sizes', () => {
    expect(fmtClock(3725)).toBe('1:02:05');
    expect(fmtClock(null)).toBe('–');
    expect(fmtBytes(4_700_000_000)).toBe('4.7 GB');
  });
});
