// REST commands. Every 4xx body is {"error": {"code", "message", "field", "details"}}.
import { csrfHeaders } from './auth.js';

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `request failed (${status})`);
    this.name = 'ApiError';
    this.status = status;
    this.code = error?.code || 'error';
    this.field = error?.field || null;
    this.details = error?.details || [];
  }
}

export async function api(method, path, body) {
  const init = { method, headers: { Accept: 'application/json', ...csrfHeaders() } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, { code: 'offline', message: 'the server is not reachable' });
  }
  const text = await resp.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (resp.status === 401) globalThis.dispatchEvent?.(new Event('phantomex:unauthorized'));
  if (!resp.ok) throw new ApiError(resp.status, json?.error || { message: text || resp.statusText });
  return json;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);

/** Map an ApiError to the form field it names: "params.period" -> "params.period" if known,
 * else the longest known prefix ("risk.stop_loss_pct.0" -> "risk.stop_loss_pct"). */
export function fieldFor(error, known) {
  const field = error?.field;
  if (!field) return null;
  const parts = String(field).split('.');
  for (let n = parts.length; n > 0; n -= 1) {
    const candidate = parts.slice(0, n).join('.');
    if (known.includes(candidate)) return candidate;
  }
  return null;
}
