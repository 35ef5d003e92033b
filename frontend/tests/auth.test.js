import { describe, expect, it } from 'vitest';
import { csrfHeaders, readCookie } from '../src/lib/auth.js';

describe('auth cookies', () => {
  it('reads one cookie among several', () => {
    const jar = 'theme=dark; phantomex_csrf=abc123; other=x=y';
    expect(readCookie('phantomex_csrf', jar)).toBe('abc123');
    expect(readCookie('other', jar)).toBe('x=y');
    expect(readCookie('missing', jar)).toBeNull();
    expect(readCookie('phantomex_csrf', '')).toBeNull();
  });

  it('sends the CSRF token only when a session has one', () => {
    expect(csrfHeaders('phantomex_csrf=tok')).toEqual({ 'X-CSRF-Token': 'tok' });
    expect(csrfHeaders('a=b')).toEqual({});
  });
});
