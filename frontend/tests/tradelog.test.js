import { describe, expect, it } from 'vitest';
import { COLUMNS, filterTrades, sortTrades, virtualWindow } from '../src/lib/tradelog.js';

const rows = Array.from({ length: 10_000 }, (_, i) => ({
  key: `k${i}`,
  agent_id: i % 2 ? 'a' : 'b',
  agent_name: i % 2 ? 'Alpha' : 'Beta',
  symbol: ['BTC', 'ETH', 'SOL'][i % 3],
  side: i % 4 ? 'buy' : 'sell',
  quantity: String((i % 97) + 0.5),
  price: String(1000 + (i % 13)),
  notional: String(i),
  fee: '0.1',
  time: new Date(Date.UTC(2023, 3, 1) - i * 60000).toISOString(),
}));

describe('trade log helpers', () => {
  it('filters by agent and symbol', () => {
    expect(filterTrades(rows, {})).toBe(rows);
    const f = filterTrades(rows, { agentId: 'a', symbol: 'BTC' });
    expect(f.every((t) => t.agent_id === 'a' && t.symbol === 'BTC')).toBe(true);
    expect(f).toHaveLength(1667);
  });

  it('sorts numerically and stably, and by time in both directions', () => {
    const byNotional = sortTrades(rows, 'notional', 'desc');
    expect(byNotional[0].key).toBe('k9999');
    expect(sortTrades(rows, 'notional', 'asc')[0].key).toBe('k0');
    expect(sortTrades(rows, 'time', 'desc')).toBe(rows);
    expect(sortTrades(rows, 'time', 'asc')[0].key).toBe('k9999');
    const bySymbol = sortTrades(rows.slice(0, 6), 'symbol', 'asc');
    expect(bySymbol.map((t) => t.key)).toEqual(['k0', 'k3', 'k1', 'k4', 'k2', 'k5']);
  });

  it('has a realized P&L column whose blanks (buys) sort last either way', () => {
    const some = [
      { key: 'b1', side: 'buy', realized_pnl: null },
      { key: 's1', side: 'sell', realized_pnl: '-3.24' },
      { key: 's2', side: 'sell', realized_pnl: '12.5' },
      { key: 'b2', side: 'buy', realized_pnl: null },
    ];
    expect(COLUMNS.some((c) => c.key === 'realized_pnl' && c.numeric)).toBe(true);
    expect(sortTrades(some, 'realized_pnl', 'asc').map((t) => t.key)).toEqual(['s1', 's2', 'b1', 'b2']);
    expect(sortTrades(some, 'realized_pnl', 'desc').map((t) => t.key)).toEqual(['s2', 's1', 'b1', 'b2']);
  });

  it('renders only a window of 10,000 rows', () => {
    const w = virtualWindow(10_000, 0, 460, 34);
    expect(w.start).toBe(0);
    expect(w.end - w.start).toBeLessThan(40);
    expect(w.padBottom).toBe((10_000 - w.end) * 34);
    const bottom = virtualWindow(10_000, 10_000 * 34 - 460, 460, 34);
    expect(bottom.end).toBe(10_000);
    expect(bottom.padTop + (bottom.end - bottom.start) * 34 + bottom.padBottom).toBe(340_000);
    expect(virtualWindow(0, 0, 460, 34)).toEqual({ start: 0, end: 0, padTop: 0, padBottom: 0 });
  });
});
