// Dashboard login: the session state, login and logout. The session cookie is HttpOnly; the
// CSRF token is in the readable `phantomex_csrf` cookie and goes back in `X-CSRF-Token`.

export const CSRF_COOKIE = 'phantomex_csrf';

/** The value of cookie `name` in a `document.cookie` string, or null. */
export function readCookie(name, cookies = globalThis.document?.cookie || '') {
  for (const part of cookies.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return null;
}

/** Headers a mutating request needs for a cookie session (none without one). */
export function csrfHeaders(cookies) {
  const token = readCookie(CSRF_COOKIE, cookies);
  return token ? { 'X-CSRF-Token': token } : {};
}

async function send(method, path, body) {
  const init = { method, headers: { Accept: 'application/json', ...csrfHeaders() } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const json = await resp.json().catch(() => null);
  return { ok: resp.ok, status: resp.status, json, retryAfter: resp.headers.get('Retry-After') };
}

export const sessionState = () => send('GET', '/api/auth/session');
export const login = (password) => send('POST', '/api/auth/login', { password });
export const logout = () => send('POST', '/api/auth/logout');
