// Pure reducers for the dashboard state: the WebSocket snapshot, its typed messages
// (price, decision, approval, trade, agent, risk, error) and the results of REST calls.
// Every reducer returns a new state object and never mutates the old one.
import { add, div, mul, sub, toNumber } from './decimal.js';
import { fromHistory, mergeHistory, thin } from './equity.js';

export const MAX_TRADES = 50_000;
export const MAX_RISK_EVENTS = 50;

export function initialState() {
  return {
    clock: null, // the kernel clock (market time in a replay) of the latest message
    agents: [], // agent views in creation order, marked to the latest prices
    prices: {}, // symbol -> {symbol, time, price, change_24h_pct}
    symbols: [], // sorted symbols
    pending: [], // decisions waiting for approval, oldest first
    killSwitch: false,
    latestDecision: {}, // agent_id -> decision record
    equity: {}, // agent_id -> [{t, v, f}] equity and funding samples (numbers, for drawing only)
    trades: [], // normalised trades, newest first
    tradesTotal: 0,
    riskEvents: [], // newest first
    lastError: null,
    snapshots: 0, // how many snapshots were applied (reconnects + 1)
  };
}

const ms = (iso) => (iso ? Date.parse(iso) : NaN);

/** One trade row from a REST trade or a WebSocket fill. */
export function normaliseTrade(raw, agentName) {
  const quantity = raw.quantity ?? null;
  const price = raw.price ?? null;
  return {
    key: raw.idempotency_key || raw.order_id || `${raw.agent_id}:${raw.time}:${raw.symbol}`,
    agent_id: raw.agent_id,
    agent_name: raw.agent_name || agentName || '',
    symbol: raw.symbol,
    side: raw.side,
    quantity,
    price,
    fee: raw.fee ?? null,
    notional: raw.notional ?? (quantity !== null && price !== null ? mul(quantity, price) : null),
    realized_pnl: raw.realized_pnl ?? null,
    time: raw.time,
    ms: ms(raw.time),
    reasoning: raw.reasoning || '',
    decision_id: raw.decision_id || null,
  };
}

function byNewest(a, b) {
  return b.ms - a.ms;
}

/** Merge trade rows into a newest-first list without duplicates (stable for equal times). */
export function mergeTrades(existing, incoming) {
  if (!incoming.length) return existing;
  const seen = new Set(existing.map((t) => t.key));
  const fresh = [];
  for (const row of incoming) {
    if (!seen.has(row.key)) {
      seen.add(row.key);
      fresh.push(row);
    }
  }
  if (!fresh.length) return existing;
  // The common case: one new trade newer than everything we hold.
  if (fresh.length === 1 && (!existing.length || fresh[0].ms >= existing[0].ms)) {
    const out = [fresh[0], ...existing];
    return out.length > MAX_TRADES ? out.slice(0, MAX_TRADES) : out;
  }
  const out = [...fresh, ...existing].sort(byNewest);
  return out.length > MAX_TRADES ? out.slice(0, MAX_TRADES) : out;
}

function pushEquity(equity, agentId, time, value, fundingValue) {
  const v = toNumber(value);
  if (!Number.isFinite(v) || !Number.isFinite(time)) return equity;
  const f = toNumber(fundingValue);
  const points = equity[agentId] || [];
  const last = points[points.length - 1];
  const t = last ? Math.max(time, last.t) : time; // a late message: its value, at the end
  const same = (p) => p.v === v && (p.f === f || (Number.isNaN(p.f) && Number.isNaN(f)));
  if (last && same(last) && last.t === t) return equity;
  if (last && same(last) && points.length > 1 && same(points[points.length - 2])) {
    // a flat run: move its end instead of adding points
    const next = points.slice(0, -1);
    next.push({ t, v, f });
    return { ...equity, [agentId]: next };
  }
  const next = points.slice();
  next.push({ t, v, f });
  return { ...equity, [agentId]: thin(next) };
}

/** Re-mark an agent's positions to `prices` (exact decimals); returns the same object if
 * nothing changed. */
export function markAgent(agent, prices) {
  const wallet = agent.wallet;
  if (!wallet || !wallet.positions || !wallet.positions.length) return agent;
  let changed = false;
  const positions = wallet.positions.map((p) => {
    const snap = prices[p.symbol];
    const mark = snap && snap.price;
    if (!mark || mark === p.mark) return p;
    changed = true;
    const value = mul(p.quantity, mark);
    return { ...p, mark, value, unrealized_pnl: sub(value, p.cost) };
  });
  if (!changed) return agent;
  let equity = wallet.cash;
  let unrealized = '0';
  for (const p of positions) {
    if (p.value !== null && p.value !== undefined) equity = add(equity, p.value);
    if (p.unrealized_pnl !== null && p.unrealized_pnl !== undefined)
      unrealized = add(unrealized, p.unrealized_pnl);
  }
  const pnl = sub(equity, wallet.funding);
  const pnlPct = div(mul(pnl, '100'), wallet.funding, 6) ?? '0';
  return {
    ...agent,
    wallet: { ...wallet, positions, equity, pnl, pnl_pct: pnlPct, unrealized_pnl: unrealized },
  };
}

function applyPrices(state, list, ts) {
  const prices = { ...state.prices };
  let newSymbol = false;
  for (const snap of list || []) {
    if (!(snap.symbol in prices)) newSymbol = true;
    prices[snap.symbol] = snap;
  }
  const symbols = newSymbol ? Object.keys(prices).sort() : state.symbols;
  let equity = state.equity;
  let agentsChanged = false;
  const agents = state.agents.map((a) => {
    const marked = markAgent(a, prices);
    if (marked !== a) {
      agentsChanged = true;
      equity = pushEquity(equity, a.id, ms(ts), marked.wallet.equity, marked.wallet.funding);
    }
    return marked;
  });
  return {
    ...state,
    prices,
    symbols,
    agents: agentsChanged ? agents : state.agents,
    equity,
  };
}

function upsertAgent(state, view, ts) {
  if (!view || !view.id) return state;
  const marked = markAgent(view, state.prices);
  const i = state.agents.findIndex((a) => a.id === view.id);
  const agents = state.agents.slice();
  if (i >= 0) agents[i] = marked;
  else agents.push(marked);
  const t = ms(ts) || ms(state.clock) || Date.now();
  const equity = pushEquity(state.equity, view.id, t, marked.wallet?.equity, marked.wallet?.funding);
  return { ...state, agents, equity };
}

function removeAgent(state, id) {
  const latestDecision = { ...state.latestDecision };
  delete latestDecision[id];
  const equity = { ...state.equity };
  delete equity[id];
  return {
    ...state,
    agents: state.agents.filter((a) => a.id !== id),
    pending: state.pending.filter((d) => d.agent_id !== id),
    latestDecision,
    equity,
  };
}

function setLatest(latestDecision, decision) {
  if (!decision || !decision.agent_id) return latestDecision;
  const current = latestDecision[decision.agent_id];
  if (current && current.id !== decision.id && ms(current.time) > ms(decision.time)) {
    return latestDecision;
  }
  return { ...latestDecision, [decision.agent_id]: decision };
}

function addPending(pending, decision) {
  const rest = pending.filter((d) => d.id !== decision.id);
  rest.push(decision);
  rest.sort((a, b) => ms(a.time) - ms(b.time));
  return rest;
}

function dropPending(pending, id) {
  return pending.some((d) => d.id === id) ? pending.filter((d) => d.id !== id) : pending;
}

function snapshot(state, data, ts) {
  const base = { ...state, clock: ts || state.clock, snapshots: state.snapshots + 1 };
  const agentsIn = data.agents || [];
  const ids = new Set(agentsIn.map((a) => a.id));
  // agents deleted while we were away lose their session data
  const latestDecision = {};
  const equityIn = {};
  for (const id of ids) {
    if (state.latestDecision[id]) latestDecision[id] = state.latestDecision[id];
    if (state.equity[id]) equityIn[id] = state.equity[id];
  }
  let next = {
    ...base,
    agents: [],
    prices: {},
    symbols: [],
    pending: [...(data.pending || [])].sort((a, b) => ms(a.time) - ms(b.time)),
    killSwitch: Boolean(data.kill_switch),
    latestDecision,
    equity: equityIn,
  };
  next = applyPrices(next, data.prices || [], ts);
  for (const view of agentsIn) next = upsertAgent(next, view, ts);
  return next;
}

/** Apply one WebSocket message ({type, ts, wall_ts, data}) or local action to the state. */
export function reduce(state, msg) {
  if (!msg || typeof msg !== 'object') return state;
  const data = msg.data || {};
  const ts = msg.ts || null;
  const clocked = ts && (!state.clock || ms(ts) >= ms(state.clock)) ? ts : state.clock;
  switch (msg.type) {
    case 'snapshot':
      return snapshot(state, data, ts);
    case 'price':
      return { ...applyPrices(state, data.prices, ts), clock: clocked };
    case 'decision': {
      const d = data.decision;
      if (!d) return state;
      return {
        ...state,
        clock: clocked,
        latestDecision: setLatest(state.latestDecision, d),
        pending: d.status === 'pending' ? state.pending : dropPending(state.pending, d.id),
      };
    }
    case 'approval': {
      // requested, or waiting (one more newer decision of its agent held behind it): the card
      // shows the latest copy; approved, rejected or expired: it leaves
      const d = data.decision;
      if (!d) return state;
      const asks = (data.event === 'requested' || data.event === 'waiting') && d.status === 'pending';
      const pending = asks ? addPending(state.pending, d) : dropPending(state.pending, d.id);
      return {
        ...state,
        clock: clocked,
        pending,
        latestDecision: setLatest(state.latestDecision, d),
      };
    }
    case 'trade': {
      if (!data.trade) return state;
      const row = normaliseTrade(data.trade, data.agent_name);
      const trades = mergeTrades(state.trades, [row]);
      return {
        ...state,
        clock: clocked,
        trades,
        tradesTotal: trades === state.trades ? state.tradesTotal : state.tradesTotal + 1,
      };
    }
    case 'agent':
      if (data.event === 'deleted') return { ...removeAgent(state, data.agent_id), clock: clocked };
      return { ...upsertAgent(state, data.agent, ts), clock: clocked };
    case 'risk': {
      const event = { ...data, ts, wall_ts: msg.wall_ts || null };
      let killSwitch = state.killSwitch;
      if (!data.agent_id && data.kind === 'kill') killSwitch = true;
      if (!data.agent_id && data.kind === 'kill_released') killSwitch = false;
      return {
        ...state,
        clock: clocked,
        killSwitch,
        riskEvents: [event, ...state.riskEvents].slice(0, MAX_RISK_EVENTS),
      };
    }
    case 'error':
      return { ...state, lastError: { message: data.message || 'error', ts, agent_id: data.agent_id } };

    // -- results of REST calls ------------------------------------------------------------------
    case 'local/trades': {
      const rows = (msg.rows || []).map((r) => normaliseTrade(r));
      const trades = mergeTrades(state.trades, rows);
      const total = Math.max(msg.total ?? 0, trades.length);
      return { ...state, trades, tradesTotal: total };
    }
    case 'local/agent':
      return upsertAgent(state, msg.agent, state.clock);
    case 'local/agentRemoved':
      return removeAgent(state, msg.id);
    case 'local/kill':
      return { ...state, killSwitch: Boolean(msg.on) };
    case 'local/decisions': {
      let latestDecision = state.latestDecision;
      const sorted = [...(msg.decisions || [])].sort((a, b) => ms(a.time) - ms(b.time));
      for (const d of sorted) latestDecision = setLatest(latestDecision, d);
      return { ...state, latestDecision };
    }
    case 'local/equity': {
      // the server's history (GET /api/equity) under the live samples that came after it
      const known = new Set(state.agents.map((a) => a.id));
      const equity = { ...state.equity };
      for (const h of msg.agents || []) {
        if (!known.has(h.agent_id)) continue;
        equity[h.agent_id] = mergeHistory(fromHistory(h), equity[h.agent_id] || []);
      }
      return { ...state, equity };
    }
    case 'local/decision': {
      const d = msg.decision;
      if (!d) return state;
      return {
        ...state,
        latestDecision: setLatest(state.latestDecision, d),
        pending: d.status === 'pending' ? addPending(state.pending, d) : dropPending(state.pending, d.id),
      };
    }
    default:
      return state;
  }
}
