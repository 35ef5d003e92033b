import { describe, expect, it } from 'vitest';
import { initialState, markAgent, mergeTrades, normaliseTrade, reduce } from '../src/lib/reducer.js';

const agent = (id, extra = {}) => ({
  id,
  name: `Agent ${id}`,
  status: 'running',
  mode: 'autonomous',
  wallet: {
    cash: '5000',
    funding: '10000',
    equity: '10000',
    pnl: '0',
    pnl_pct: '0',
    unrealized_pnl: '0',
    positions: [
      { symbol: 'BTC', quantity: '0.2', avg_cost: '25000', cost: '5000', mark: '25000', value: '5000', unrealized_pnl: '0' },
    ],
  },
  ...extra,
});

const msg = (type, data, ts = '2023-04-01T10:00:00Z') => ({ type, ts, wall_ts: ts, data });

const snapshot = (extra = {}) =>
  msg('snapshot', {
    agents: [agent('a1'), agent('a2', { wallet: { ...agent('a2').wallet, positions: [], cash: '10000' } })],
    prices: [
      { symbol: 'ETH', time: '2023-04-01T10:00:00Z', price: '1800', change_24h_pct: '1.5' },
      { symbol: 'BTC', time: '2023-04-01T10:00:00Z', price: '25000', change_24h_pct: null },
    ],
    pending: [{ id: 'd1', agent_id: 'a2', time: '2023-04-01T09:59:00Z', status: 'pending' }],
    kill_switch: false,
    ...extra,
  });

const decision = (id, status, extra = {}) => ({
  id,
  agent_id: 'a2',
  time: '2023-04-01T10:01:00Z',
  action: 'buy',
  symbol: 'ETH',
  status,
  reasoning: 'why',
  ...extra,
});

describe('snapshot', () => {
  it('replaces agents, prices, pending and the kill switch', () => {
    const s = reduce(initialState(), snapshot({ kill_switch: true }));
    expect(s.agents.map((a) => a.id)).toEqual(['a1', 'a2']);
    expect(s.symbols).toEqual(['BTC', 'ETH']);
    expect(s.prices.ETH.price).toBe('1800');
    expect(s.pending.map((d) => d.id)).toEqual(['d1']);
    expect(s.killSwitch).toBe(true);
    expect(s.snapshots).toBe(1);
    expect(s.clock).toBe('2023-04-01T10:00:00Z');
  });

  it('keeps session data (trades, equity) across a reconnect but drops deleted agents', () => {
    let s = reduce(initialState(), snapshot());
    s = reduce(s, msg('trade', { trade: { agent_id: 'a1', symbol: 'BTC', side: 'buy', quantity: '1', price: '2', fee: '0', time: '2023-04-01T10:00:00Z', idempotency_key: 'k1' }, agent_name: 'Agent a1' }));
    s = reduce(s, msg('snapshot', { agents: [agent('a1')], prices: [], pending: [], kill_switch: false }));
    expect(s.trades).toHaveLength(1);
    expect(s.agents).toHaveLength(1);
    expect(s.equity.a2).toBeUndefined();
    expect(s.equity.a1.length).toBeGreaterThan(0);
    expect(s.snapshots).toBe(2);
  });
});

describe('price', () => {
  it('updates prices and marks holdings to market exactly', () => {
    let s = reduce(initialState(), snapshot());
    s = reduce(s, msg('price', { prices: [{ symbol: 'BTC', time: '2023-04-01T10:01:00Z', price: '26000.5', change_24h_pct: '2' }] }, '2023-04-01T10:01:00Z'));
    expect(s.prices.BTC.price).toBe('26000.5');
    expect(s.prices.ETH.price).toBe('1800'); // untouched
    const a1 = s.agents.find((a) => a.id === 'a1');
    expect(a1.wallet.positions[0].value).toBe('5200.1');
    expect(a1.wallet.equity).toBe('10200.1');
    expect(a1.wallet.pnl).toBe('200.1');
    expect(a1.wallet.pnl_pct).toBe('2.001');
    expect(s.clock).toBe('2023-04-01T10:01:00Z');
    expect(s.equity.a1.at(-1).v).toBeCloseTo(10200.1);
  });

  it('leaves agents without positions (and the state slices) untouched', () => {
    const s0 = reduce(initialState(), snapshot());
    const s1 = reduce(s0, msg('price', { prices: [{ symbol: 'ETH', time: 't', price: '1900' }] }));
    expect(s1.agents[1]).toBe(s0.agents[1]);
    expect(s1.trades).toBe(s0.trades);
    expect(s1.pending).toBe(s0.pending);
  });

  it('does not re-mark when the price is unchanged', () => {
    const a = agent('x');
    expect(markAgent(a, { BTC: { price: '25000' } })).toBe(a);
  });
});

describe('approvals and decisions', () => {
  it('adds requested approvals and removes answered, expired or superseded ones', () => {
    let s = reduce(initialState(), snapshot());
    s = reduce(s, msg('approval', { event: 'requested', decision: decision('d2', 'pending') }));
    expect(s.pending.map((d) => d.id)).toEqual(['d1', 'd2']);
    expect(s.latestDecision.a2.id).toBe('d2');
    s = reduce(s, msg('approval', { event: 'approved', decision: decision('d2', 'pending') }));
    expect(s.pending.map((d) => d.id)).toEqual(['d1']);
    // expired by a tick: a `decision` message with status expired
    s = reduce(s, msg('decision', { decision: decision('d1', 'expired', { time: '2023-04-01T09:59:00Z' }) }));
    expect(s.pending).toEqual([]);
    // an older decision does not replace the latest one
    expect(s.latestDecision.a2.id).toBe('d2');
  });

  it('keeps a pending approval while newer decisions of its agent wait behind it', () => {
    let s = reduce(initialState(), snapshot());
    const held = decision('d3', 'held', { time: '2023-04-01T10:02:00Z', reason: 'waiting for your answer on decision d1' });
    s = reduce(s, msg('decision', { decision: held }));
    const waiting = { id: 'd1', agent_id: 'a2', time: '2023-04-01T09:59:00Z', status: 'pending', meta: { waiting_behind: 1 } };
    s = reduce(s, msg('approval', { event: 'waiting', decision: waiting }));
    expect(s.pending).toEqual([waiting]); // the same card, with the count of decisions behind it
    expect(s.latestDecision.a2.id).toBe('d3'); // the agent card shows the newer, held decision
    s = reduce(s, msg('approval', { event: 'expired', decision: { ...waiting, status: 'expired' } }));
    expect(s.pending).toEqual([]);
  });

  it('applies REST results (approve/reject answers, seeded decisions)', () => {
    let s = reduce(initialState(), snapshot());
    s = reduce(s, { type: 'local/decision', decision: decision('d1', 'rejected', { time: '2023-04-01T09:59:00Z' }) });
    expect(s.pending).toEqual([]);
    s = reduce(s, { type: 'local/decisions', decisions: [decision('d9', 'held', { agent_id: 'a1', time: '2023-04-01T08:00:00Z' }), decision('d8', 'executed', { agent_id: 'a1', time: '2023-04-01T09:00:00Z' })] });
    expect(s.latestDecision.a1.id).toBe('d8');
  });
});

describe('trades', () => {
  const fill = (key, time, extra = {}) => ({
    agent_id: 'a1', symbol: 'BTC', side: 'buy', quantity: '0.5', price: '100', fee: '0.05', time, idempotency_key: key, ...extra,
  });

  it('puts new trades first, without duplicates, and counts them', () => {
    let s = reduce(initialState(), snapshot());
    s = reduce(s, { type: 'local/trades', rows: [{ ...fill('k1', '2023-04-01T09:00:00Z'), agent_name: 'A', notional: '50' }], total: 1 });
    s = reduce(s, msg('trade', { trade: fill('k2', '2023-04-01T10:00:00Z'), agent_name: 'A' }));
    s = reduce(s, msg('trade', { trade: fill('k2', '2023-04-01T10:00:00Z'), agent_name: 'A' }));
    expect(s.trades.map((t) => t.key)).toEqual(['k2', 'k1']);
    expect(s.trades[0].notional).toBe('50');
    expect(s.trades[0].agent_name).toBe('A');
    expect(s.tradesTotal).toBe(2);
  });

  it('merges a reloaded page newest first', () => {
    const rows = [
      normaliseTrade(fill('a', '2023-04-01T10:00:00Z')),
      normaliseTrade(fill('b', '2023-04-01T08:00:00Z')),
    ];
    const merged = mergeTrades(rows, [
      normaliseTrade(fill('c', '2023-04-01T09:00:00Z')),
      normaliseTrade(fill('a', '2023-04-01T10:00:00Z')),
    ]);
    expect(merged.map((t) => t.key)).toEqual(['a', 'c', 'b']);
  });
});

describe('agents, risk and errors', () => {
  it('upserts and deletes agents', () => {
    let s = reduce(initialState(), snapshot());
    s = reduce(s, msg('agent', { event: 'updated', agent: agent('a3') }));
    expect(s.agents.map((a) => a.id)).toEqual(['a1', 'a2', 'a3']);
    s = reduce(s, msg('agent', { event: 'updated', agent: agent('a1', { mode: 'advisory' }) }));
    expect(s.agents[0].mode).toBe('advisory');
    s = reduce(s, msg('agent', { event: 'deleted', agent_id: 'a2' }));
    expect(s.agents.map((a) => a.id)).toEqual(['a1', 'a3']);
    expect(s.pending).toEqual([]); // its pending decision went with it
  });

  it('follows the global kill switch from risk events', () => {
    let s = reduce(initialState(), snapshot());
    s = reduce(s, msg('risk', { agent_id: 'a1', kind: 'kill', symbol: null, detail: 'one agent' }));
    expect(s.killSwitch).toBe(false);
    s = reduce(s, msg('risk', { agent_id: null, kind: 'kill', symbol: null, detail: 'all' }));
    expect(s.killSwitch).toBe(true);
    s = reduce(s, msg('risk', { agent_id: null, kind: 'kill_released', symbol: null, detail: 'off' }));
    expect(s.killSwitch).toBe(false);
    expect(s.riskEvents).toHaveLength(3);
  });

  it('records errors and ignores unknown messages', () => {
    let s = reduce(initialState(), snapshot());
    s = reduce(s, msg('error', { message: 'tick failed: boom' }));
    expect(s.lastError.message).toBe('tick failed: boom');
    expect(reduce(s, msg('mystery', {}))).toBe(s);
    expect(reduce(s, null)).toBe(s);
  });
});
