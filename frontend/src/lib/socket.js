// The WebSocket connection: JSON messages in, a status out, and reconnection with
// exponential back-off (no polling). Timers and the WebSocket class are injectable for tests.

export const BACKOFF = { base: 500, factor: 2, max: 8000, jitter: 0.2 };

/** Delay before reconnect attempt `attempt` (0-based): base·factor^attempt, capped at max,
 * with ±jitter spread so many tabs do not reconnect in lockstep. */
export function backoffDelay(attempt, opts = {}, random = Math.random) {
  const { base, factor, max, jitter } = { ...BACKOFF, ...opts };
  const raw = Math.min(max, base * factor ** Math.max(0, attempt));
  const spread = raw * jitter * (2 * random() - 1);
  return Math.max(0, Math.min(max, Math.round(raw + spread)));
}

export function defaultUrl(loc = globalThis.location) {
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${loc.host}/ws`;
}

/**
 * Status: "connecting" (first attempt), "live" (snapshot received), "reconnecting" (waiting
 * for or making a retry) or "closed" (stopped by us).
 */
export class LiveSocket {
  constructor(url, options = {}) {
    this.url = url;
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    this.onMessage = options.onMessage || (() => {});
    this.onStatus = options.onStatus || (() => {});
    this.setTimeout = options.setTimeout || ((fn, ms) => globalThis.setTimeout(fn, ms));
    this.clearTimeout = options.clearTimeout || ((id) => globalThis.clearTimeout(id));
    this.now = options.now || (() => Date.now());
    this.random = options.random || Math.random;
    this.backoff = { ...BACKOFF, ...(options.backoff || {}) };
    this.attempt = 0; // failed attempts since the last good connection
    this.status = 'idle';
    this.retryAt = null; // when the next attempt is due (ms, from now())
    this.ws = null;
    this.timer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this._connect(this.status === 'idle' ? 'connecting' : 'reconnecting');
  }

  stop() {
    this.stopped = true;
    if (this.timer !== null) this.clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      try {
        ws.close();
      } catch {
        /* already closed */
      }
    }
    this._set('closed');
  }

  /** Reconnect now instead of waiting out the back-off (e.g. a "retry now" button). */
  retryNow() {
    if (this.stopped || this.status === 'live' || this.ws) return;
    if (this.timer !== null) this.clearTimeout(this.timer);
    this.timer = null;
    this._connect('reconnecting');
  }

  _set(status) {
    if (status !== 'reconnecting') this.retryAt = null;
    this.status = status;
    this.onStatus(status, this);
  }

  _connect(status) {
    this.timer = null;
    this.retryAt = null;
    this._set(status);
    let ws;
    try {
      ws = new this.WebSocket(this.url);
    } catch {
      this._scheduleRetry();
      return;
    }
    this.ws = ws;
    let gotSnapshot = false;
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return; // not JSON: ignore
      }
      if (!gotSnapshot && msg && msg.type === 'snapshot') {
        gotSnapshot = true;
        this.attempt = 0; // a working connection resets the back-off
        this.onMessage(msg);
        this._set('live');
        return;
      }
      this.onMessage(msg);
    };
    ws.onerror = () => {
      /* a close event always follows */
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      this._scheduleRetry();
    };
  }

  _scheduleRetry() {
    const delay = backoffDelay(this.attempt, this.backoff, this.random);
    this.attempt += 1;
    this.retryAt = this.now() + delay;
    this.status = 'reconnecting';
    this.onStatus('reconnecting', this);
    this.timer = this.setTimeout(() => this._connect('reconnecting'), delay);
  }
}
