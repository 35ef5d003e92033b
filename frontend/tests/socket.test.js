import { describe, expect, it } from 'vitest';
import { LiveSocket, backoffDelay } from '../src/lib/socket.js';

class FakeWebSocket {
  static instances = [];
  constructor(url) {
    this.url = url;
    this.closed = false;
    FakeWebSocket.instances.push(this);
  }
  close() {
    this.closed = true;
  }
  // test helpers
  message(obj) {
    this.onmessage?.({ data: JSON.stringify(obj) });
  }
  drop() {
    this.onclose?.({ code: 1006 });
  }
}

function fakeTimers() {
  let now = 0;
  let id = 0;
  const timers = new Map();
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      id += 1;
      timers.set(id, { fn, at: now + ms });
      return id;
    },
    clearTimeout: (t) => timers.delete(t),
    pending: () => [...timers.values()].map((t) => t.at - now),
    advance(ms) {
      now += ms;
      for (const [key, t] of [...timers.entries()].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at <= now) {
          timers.delete(key);
          t.fn();
        }
      }
    },
  };
}

function setup() {
  FakeWebSocket.instances = [];
  const timers = fakeTimers();
  const statuses = [];
  const messages = [];
  const sock = new LiveSocket('ws://test/ws', {
    WebSocket: FakeWebSocket,
    onMessage: (m) => messages.push(m),
    onStatus: (s) => statuses.push(s),
    setTimeout: timers.setTimeout,
    clearTimeout: timers.clearTimeout,
    now: timers.now,
    random: () => 0.5, // no jitter
    backoff: { base: 500, factor: 2, max: 8000 },
  });
  return { sock, timers, statuses, messages };
}

describe('backoffDelay', () => {
  it('grows exponentially and is capped', () => {
    const mid = () => 0.5;
    expect([0, 1, 2, 3, 4, 5, 10].map((a) => backoffDelay(a, {}, mid))).toEqual([
      500, 1000, 2000, 4000, 8000, 8000, 8000,
    ]);
  });

  it('spreads by the jitter and never exceeds the cap', () => {
    expect(backoffDelay(1, { jitter: 0.2 }, () => 0)).toBe(800);
    expect(backoffDelay(1, { jitter: 0.2 }, () => 1)).toBe(1200);
    expect(backoffDelay(9, { jitter: 0.2 }, () => 1)).toBe(8000);
  });
});

describe('LiveSocket', () => {
  it('is live after the snapshot and passes messages on', () => {
    const { sock, statuses, messages } = setup();
    sock.start();
    expect(statuses).toEqual(['connecting']);
    const ws = FakeWebSocket.instances[0];
    ws.message({ type: 'snapshot', data: {} });
    ws.message({ type: 'price', data: { prices: [] } });
    ws.onmessage({ data: 'not json' });
    expect(statuses.at(-1)).toBe('live');
    expect(messages.map((m) => m.type)).toEqual(['snapshot', 'price']);
  });

  it('reconnects with exponential back-off until a snapshot arrives, then resets', () => {
    const { sock, timers, statuses } = setup();
    sock.start();
    FakeWebSocket.instances[0].message({ type: 'snapshot', data: {} });
    FakeWebSocket.instances[0].drop(); // the server went away
    expect(sock.status).toBe('reconnecting');
    expect(timers.pending()).toEqual([500]);
    expect(sock.retryAt).toBe(500);

    timers.advance(500);
    expect(FakeWebSocket.instances).toHaveLength(2);
    FakeWebSocket.instances[1].drop(); // refused again
    expect(timers.pending()).toEqual([1000]);
    timers.advance(1000);
    FakeWebSocket.instances[2].drop();
    expect(timers.pending()).toEqual([2000]);
    timers.advance(1999);
    expect(FakeWebSocket.instances).toHaveLength(3); // not before its time
    timers.advance(1);
    const ws = FakeWebSocket.instances[3];
    ws.message({ type: 'snapshot', data: {} });
    expect(sock.status).toBe('live');
    expect(statuses.filter((s) => s === 'live')).toHaveLength(2);

    ws.drop(); // a good connection reset the back-off
    expect(timers.pending()).toEqual([500]);
  });

  it('does not count an open without a snapshot as a good connection', () => {
    const { sock, timers } = setup();
    sock.start();
    FakeWebSocket.instances[0].drop();
    timers.advance(500);
    FakeWebSocket.instances[1].onopen?.();
    FakeWebSocket.instances[1].drop();
    expect(timers.pending()).toEqual([1000]);
  });

  it('retries at once on request and stops for good on stop()', () => {
    const { sock, timers } = setup();
    sock.start();
    FakeWebSocket.instances[0].drop();
    sock.retryNow();
    expect(FakeWebSocket.instances).toHaveLength(2);
    expect(timers.pending()).toEqual([]);
    sock.stop();
    expect(FakeWebSocket.instances[1].closed).toBe(true);
    expect(sock.status).toBe('closed');
    FakeWebSocket.instances[1].drop();
    expect(timers.pending()).toEqual([]);
  });

  it('survives a WebSocket constructor that throws', () => {
    const { sock, timers } = setup();
    sock.WebSocket = function Boom() {
      throw new Error('bad url');
    };
    sock.start();
    expect(sock.status).toBe('reconnecting');
    expect(timers.pending()).toEqual([500]);
  });
});
