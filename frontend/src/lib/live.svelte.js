// The live store: one WebSocket (snapshot + typed messages through the pure reducer) and the
// REST loads that complete it (trade history, latest decisions). Components read slices.
import { get } from './api.js';
import { learnPrecision } from './format.js';
import { toasts } from './toast.svelte.js';
import { initialState, reduce } from './reducer.js';
import { LiveSocket, defaultUrl } from './socket.js';

const TRADE_PAGE = 1000;
const TRADE_PAGES = 20; // up to 20,000 trades of history in the browser
const EQUITY_POINTS = 300; // samples per agent of the equity history loaded on (re)connect

class Live {
  state = $state.raw(initialState());
  connection = $state('connecting'); // connecting | live | reconnecting | closed
  retryAt = $state(null);
  tradesLoading = $state(false);
  equityLoaded = $state(0); // how many equity histories were loaded (for tests and tools)

  // Slices: a derived only notifies its readers when its value changes, so the trade log does
  // not re-render on price ticks.
  clock = $derived(this.state.clock);
  agents = $derived(this.state.agents);
  prices = $derived(this.state.prices);
  symbols = $derived(this.state.symbols);
  pending = $derived(this.state.pending);
  killSwitch = $derived(this.state.killSwitch);
  latestDecision = $derived(this.state.latestDecision);
  equity = $derived(this.state.equity);
  trades = $derived(this.state.trades);
  tradesTotal = $derived(this.state.tradesTotal);
  lastError = $derived(this.state.lastError);

  socket = null;

  dispatch(action) {
    this.state = reduce(this.state, action);
  }

  start(url = defaultUrl()) {
    if (this.socket) return;
    this.socket = new LiveSocket(url, {
      onMessage: (msg) => {
        for (const p of msg.data?.prices || []) learnPrecision(p.symbol, p.price);
        this.dispatch(msg);
        if (msg.type === 'snapshot') this.afterSnapshot();
        else if (msg.type === 'error') toasts.error(`Server: ${msg.data?.message || 'error'}`);
      },
      onStatus: (status, sock) => {
        this.connection = status;
        this.retryAt = sock.retryAt;
      },
    });
    this.socket.start();
  }

  stop() {
    this.socket?.stop();
    this.socket = null;
  }

  retryNow() {
    this.socket?.retryNow();
  }

  /** After every (re)connect: fetch what the snapshot does not carry. */
  afterSnapshot() {
    this.loadTrades().catch(() => {});
    this.loadEquity().catch(() => {});
    get('/api/decisions?limit=200')
      .then((decisions) => this.dispatch({ type: 'local/decisions', decisions }))
      .catch(() => {});
  }

  /** Every agent's equity history from the server, under the live samples. */
  async loadEquity() {
    const res = await get(`/api/equity?points=${EQUITY_POINTS}`);
    this.dispatch({ type: 'local/equity', agents: res.agents || [] });
    this.equityLoaded += 1;
  }

  async loadTrades() {
    if (this.tradesLoading) return;
    this.tradesLoading = true;
    try {
      const known = new Set(this.state.trades.map((t) => t.key));
      for (let page = 0; page < TRADE_PAGES; page += 1) {
        const offset = page * TRADE_PAGE;
        const res = await get(`/api/trades?limit=${TRADE_PAGE}&offset=${offset}`);
        const rows = res.trades || [];
        this.dispatch({ type: 'local/trades', rows, total: res.total });
        // stop once a page reaches trades we already had (a reconnect) or the end
        if (rows.length < TRADE_PAGE || rows.some((r) => known.has(r.idempotency_key))) break;
        if (offset + rows.length >= res.total) break;
      }
    } finally {
      this.tradesLoading = false;
    }
  }
}

export const live = new Live();
