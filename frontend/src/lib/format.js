// Display formatting of the API's decimal strings (exact rounding, no float arithmetic).
import { parse, round, sign, toString } from './decimal.js';

const MINUS = '\u2212';

function group(intPart) {
  return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** "12345.678" -> "12,345.68" (places decimals, grouped); "–" for null. */
export function fmtNumber(value, places = 2) {
  const r = round(value, places);
  if (r === null) return '–';
  const neg = r.startsWith('-');
  const [i, f] = (neg ? r.slice(1) : r).split('.');
  return (neg ? MINUS : '') + group(i) + (f !== undefined ? `.${f}` : '');
}

/** Money in USD: "$10,000.00"; with signed=true a leading + or −. */
export function fmtMoney(value, { signed = false, places = 2 } = {}) {
  const r = round(value, places);
  if (r === null) return '–';
  const neg = r.startsWith('-');
  const [i, f] = (neg ? r.slice(1) : r).split('.');
  const body = `$${group(i)}${f !== undefined ? `.${f}` : ''}`;
  if (neg) return MINUS + body;
  return (signed && sign(r) > 0 ? '+' : '') + body;
}

/** A percent with sign: "+1.23%". */
export function fmtPct(value, places = 2) {
  if (value === null || value === undefined) return '–';
  const r = round(value, places);
  if (r === null) return '–';
  const neg = r.startsWith('-');
  const body = `${neg ? r.slice(1) : r}%`;
  if (neg) return MINUS + body;
  return (sign(r) > 0 ? '+' : '') + body;
}

/** Prices keep more decimals when they are small (DOGE at 0.08206). */
export function pricePlaces(value) {
  const x = parse(value);
  if (!x) return 2;
  const abs = x.n < 0n ? -x.n : x.n;
  const whole = abs / 10n ** BigInt(x.s);
  if (whole >= 1000n) return 2;
  if (whole >= 1n) return 4;
  return 6;
}

export function fmtPrice(value) {
  if (value === null || value === undefined) return '–';
  const places = pricePlaces(value);
  const r = round(value, places);
  if (r === null) return '–';
  // Trim trailing zeros beyond 2 decimals: 21.1700 -> 21.17
  const trimmed = r.includes('.') ? r.replace(/0+$/, '').replace(/\.$/, '') : r;
  const [i, f = ''] = trimmed.split('.');
  const frac = f.length < 2 ? f.padEnd(2, '0') : f;
  const neg = i.startsWith('-');
  return (neg ? MINUS : '') + group(neg ? i.slice(1) : i) + '.' + frac;
}

/** Quantities: up to 8 decimals, trailing zeros trimmed. */
export function fmtQty(value, places = 8) {
  const r = round(value, places);
  if (r === null) return '–';
  const t = r.includes('.') ? r.replace(/0+$/, '').replace(/\.$/, '') : r;
  const neg = t.startsWith('-');
  const [i, f] = (neg ? t.slice(1) : t).split('.');
  return (neg ? MINUS : '') + group(i) + (f ? `.${f}` : '');
}

export function signClass(value) {
  const s = sign(value);
  return s > 0 ? 'up' : s < 0 ? 'down' : 'flat';
}

const pad = (n) => String(n).padStart(2, '0');

/** "2023-04-01T22:25:00Z" -> "22:25:00" (UTC). */
export function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '–';
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** "2023-04-01 22:25 UTC" */
export function fmtDateTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '–';
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(
    d.getUTCHours(),
  )}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

export function fmtCountdown(ms) {
  if (ms <= 0) return 'expired';
  const total = Math.ceil(ms / 1000);
  const m = Math.floor(total / 60);
  const s = total % 60;
  return `${m}:${pad(s)}`;
}

export { toString as decimalString };
