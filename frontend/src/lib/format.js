// The dashboard's one formatting rule for what people read. Money, prices and returns arrive as
// the API's decimal strings (or JSON numbers for statistics) and are rounded exactly (no float
// arithmetic on money):
// - prices to the instrument's precision (the decimals its market quotes in), with at least 4
//   significant digits for small prices: XRP 0.5095, DOGE 0.08206, BTC 28,436.34;
// - money with its currency and thousands separators; a negative amount reads "−$3.24";
// - returns in percent with a sign: "+1.23%", "−0.40%"; ratios (Sharpe) as signed numbers;
// - latencies as "11.6 ms" / "1.24 s"; times in UTC to the second, never microseconds.
// Negative numbers use the minus sign U+2212; a missing value is "–".
import { mul, parse, round, sign, sub, toString } from './decimal.js';

export const MINUS = '\u2212';
export const NONE = '–';
const CURRENCY = { USD: '$', EUR: '€', GBP: '£', JPY: '¥' };
const MAX_PLACES = 12;

function group(intPart) {
  return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** "-1234.5" -> "−1,234.5" (a rounded plain decimal string, grouped, with the minus sign). */
function grouped(r) {
  const neg = r.startsWith('-');
  const [i, f] = (neg ? r.slice(1) : r).split('.');
  return (neg ? MINUS : '') + group(i) + (f !== undefined ? `.${f}` : '');
}

const missing = (value) => value === null || value === undefined || value === '';

/** "12345.678" -> "12,345.68" (places decimals, grouped); "–" for none. */
export function fmtNumber(value, places = 2) {
  if (missing(value)) return NONE;
  const r = round(value, places);
  return r === null ? NONE : grouped(r);
}

/** A whole count: 12345 -> "12,345". */
export function fmtCount(value) {
  return fmtNumber(value, 0);
}

/** Money: "$10,000.00", "−$3.24"; signed=true adds "+" to gains; other currencies by code
 * ("€", or "12.00 USDC" for a code without a sign). */
export function fmtMoney(value, { signed = false, places = 2, currency = 'USD' } = {}) {
  if (missing(value)) return NONE;
  const r = round(value, places);
  if (r === null) return NONE;
  const neg = r.startsWith('-');
  const body = grouped(neg ? r.slice(1) : r);
  const symbol = CURRENCY[currency];
  const text = symbol ? `${symbol}${body}` : `${body} ${currency}`;
  if (neg) return MINUS + text;
  return (signed && sign(r) > 0 ? '+' : '') + text;
}

/** A percent (the value is in percent already): "+1.23%", "−0.40%", "0.00%". */
export function fmtPct(value, places = 2) {
  if (missing(value)) return NONE;
  const r = round(value, places);
  if (r === null) return NONE;
  const neg = r.startsWith('-');
  const body = `${neg ? r.slice(1) : r}%`;
  if (neg) return MINUS + body;
  return (sign(r) > 0 ? '+' : '') + body;
}

/** A return given as a fraction: 0.0123 -> "+1.23%". */
export function fmtReturn(fraction, places = 2) {
  if (missing(fraction)) return NONE;
  const x = parse(String(fraction));
  return x ? fmtPct(mul(x, '100'), places) : NONE;
}

/** A ratio such as Sharpe: -143.751 -> "−143.75". */
export function fmtRatio(value, places = 2) {
  if (missing(value)) return NONE;
  return fmtNumber(String(value), places);
}

// -- prices ----------------------------------------------------------------------------------------
const instrumentPlaces = new Map(); // symbol -> decimals its market quotes in
const MAX_QUOTED = 8; // more decimals than this in a quote is float noise, not a tick size

/** Learn an instrument's precision from the prices its market quotes: the most decimals seen
 * (trailing zeros aside), "0.5095" -> 4. */
export function learnPrecision(symbol, price) {
  if (!symbol || missing(price)) return;
  const text = toString(parse(String(price)));
  if (text === null) return;
  const places = text.includes('.') ? text.replace(/0+$/, '').split('.')[1].length : 0;
  if (places <= MAX_QUOTED && places > (instrumentPlaces.get(symbol) ?? -1)) {
    instrumentPlaces.set(symbol, places);
  }
}

/** Forget what was learnt (tests). */
export function resetPrecision() {
  instrumentPlaces.clear();
}

/** floor(log10(|value|)) of a decimal, exactly: 28436.34 -> 4, 0.5095 -> -1, 0.08206 -> -2. */
function magnitude(x) {
  const digits = (x.n < 0n ? -x.n : x.n).toString();
  if (digits === '0') return 0;
  return digits.length - 1 - x.s;
}

/** Decimals to show a price with: the instrument's precision when known, and always enough
 * for 4 significant digits (never fewer than 2). */
export function pricePlaces(value, symbol) {
  const x = parse(value);
  const significant = x ? Math.max(2, 3 - magnitude(x)) : 2;
  const known = symbol ? (instrumentPlaces.get(symbol) ?? 0) : 0;
  return Math.min(MAX_PLACES, Math.max(significant, known));
}

/** A price: "28,436.34", "0.5095" (XRP), "0.08206" (DOGE). */
export function fmtPrice(value, symbol) {
  if (missing(value)) return NONE;
  return fmtNumber(value, pricePlaces(value, symbol));
}

/** Quantities: up to `places` decimals, trailing zeros trimmed. */
export function fmtQty(value, places = 8) {
  if (missing(value)) return NONE;
  const r = round(value, places);
  if (r === null) return NONE;
  return grouped(r.includes('.') ? r.replace(/0+$/, '').replace(/\.$/, '') : r);
}

export function signClass(value) {
  const s = sign(value);
  return s > 0 ? 'up' : s < 0 ? 'down' : 'flat';
}

// -- durations and times ---------------------------------------------------------------------------
/** A latency in seconds, to 3 significant digits: 0.0116 -> "11.6 ms", 1.2345 -> "1.23 s". */
export function fmtLatency(seconds) {
  if (missing(seconds)) return NONE;
  const x = parse(String(seconds));
  if (!x || x.n < 0n) return NONE;
  const ms = sign(sub(x, '1')) < 0;
  const value = parse(ms ? mul(x, '1000') : toString(x));
  const places = Math.max(0, 2 - magnitude(value));
  const text = round(value, places).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
  return `${text} ${ms ? 'ms' : 's'}`;
}

/** A duration in seconds as a clock: 3725 -> "1:02:05". */
export function fmtClock(seconds) {
  if (missing(seconds) || !Number.isFinite(Number(seconds))) return NONE;
  const s = Math.max(0, Math.round(Number(seconds)));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${pad(m)}:${pad(s % 60)}`;
}

/** Bytes in decimal units: 4_700_000_000 -> "4.7 GB". */
export function fmtBytes(n) {
  if (missing(n) || !Number.isFinite(Number(n))) return '';
  let v = Number(n);
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

const pad = (n) => String(n).padStart(2, '0');

function utc(iso) {
  if (!iso) return null;
  const d = iso instanceof Date ? iso : new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

const day = (d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
const hm = (d) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
const hms = (d) => `${hm(d)}:${pad(d.getUTCSeconds())}`;

/** "2023-04-01T22:25:00.123456Z" -> "22:25:00" (UTC). */
export function fmtTime(iso) {
  const d = utc(iso);
  return d ? hms(d) : NONE;
}

/** "2023-04-01 22:25:00" (UTC). */
export function fmtDateTime(iso) {
  const d = utc(iso);
  return d ? `${day(d)} ${hms(d)}` : NONE;
}

/** A window: "2023-04-10 00:00 → 02:00 UTC", or with both dates when it spans days. */
export function fmtRange(startIso, endIso) {
  const a = utc(startIso);
  const b = utc(endIso);
  if (!a || !b) return NONE;
  const end = day(a) === day(b) ? hm(b) : `${day(b)} ${hm(b)}`;
  return `${day(a)} ${hm(a)} → ${end} UTC`;
}

export function fmtCountdown(ms) {
  if (ms <= 0) return 'expired';
  const total = Math.ceil(ms / 1000);
  const m = Math.floor(total / 60);
  const s = total % 60;
  return `${m}:${pad(s)}`;
}

export { toString as decimalString };
