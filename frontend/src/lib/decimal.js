// Exact decimal arithmetic on the API's decimal strings (BigInt based), for totals and
// mark-to-market values. Nothing here is ever sent back to the server.

const DEC_RE = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** Parse "12.340" / "-0.5" / "1e-7" into {n: BigInt, s: scale} (value = n / 10^s), or null. */
export function parse(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === 'object' && typeof value.n === 'bigint') return value;
  const text = String(value).trim();
  const m = DEC_RE.exec(text);
  if (!m || (m[2] === '' && (m[3] === undefined || m[3] === ''))) return null;
  const frac = m[3] || '';
  let n = BigInt((m[2] || '0') + frac);
  let s = frac.length;
  const exp = m[4] ? parseInt(m[4], 10) : 0;
  if (exp > 0) {
    if (exp >= s) {
      n *= 10n ** BigInt(exp - s);
      s = 0;
    } else {
      s -= exp;
    }
  } else if (exp < 0) {
    s += -exp;
  }
  if (m[1] === '-') n = -n;
  return { n, s };
}

function align(a, b) {
  if (a.s === b.s) return [a.n, b.n, a.s];
  if (a.s > b.s) return [a.n, b.n * 10n ** BigInt(a.s - b.s), a.s];
  return [a.n * 10n ** BigInt(b.s - a.s), b.n, b.s];
}

function norm(d) {
  // Trim trailing zeros of the fraction so scales stay small.
  let { n, s } = d;
  while (s > 0 && n % 10n === 0n) {
    n /= 10n;
    s -= 1;
  }
  return { n, s };
}

export function add(a, b) {
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return null;
  const [p, q, s] = align(x, y);
  return toString(norm({ n: p + q, s }));
}

export function sub(a, b) {
  const y = parse(b);
  if (!y) return null;
  return add(a, { n: -y.n, s: y.s });
}

export function mul(a, b) {
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return null;
  return toString(norm({ n: x.n * y.n, s: x.s + y.s }));
}

/** a / b rounded to `places` decimals (half away from zero); null when b is zero. */
export function div(a, b, places = 8) {
  const x = parse(a);
  const y = parse(b);
  if (!x || !y || y.n === 0n) return null;
  // (x.n / 10^x.s) / (y.n / 10^y.s) = x.n * 10^(y.s + places + 1 - x.s) / y.n / 10^(places+1)
  const shift = y.s + places + 1 - x.s;
  let num = x.n;
  let den = y.n;
  if (shift >= 0) num *= 10n ** BigInt(shift);
  else den *= 10n ** BigInt(-shift);
  const q = num / den; // truncated, places + 1 decimals
  return toString(norm(roundScaled({ n: q, s: places + 1 }, places)));
}

export function sum(values) {
  let total = '0';
  for (const v of values) {
    const next = add(total, v);
    if (next !== null) total = next;
  }
  return total;
}

export function cmp(a, b) {
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return 0;
  const [p, q] = align(x, y);
  return p < q ? -1 : p > q ? 1 : 0;
}

export function sign(a) {
  const x = parse(a);
  if (!x || x.n === 0n) return 0;
  return x.n < 0n ? -1 : 1;
}

function roundScaled(d, places) {
  if (d.s <= places) return d;
  const drop = 10n ** BigInt(d.s - places);
  let q = d.n / drop;
  const r = d.n % drop;
  const twice = (r < 0n ? -r : r) * 2n;
  if (twice >= drop) q += d.n < 0n ? -1n : 1n;
  return { n: q, s: places };
}

/** Round half away from zero to `places` decimals; returns a plain decimal string. */
export function round(a, places) {
  const x = parse(a);
  if (!x) return null;
  return toString(roundScaled(x, places), places);
}

export function toString(d, minPlaces = 0) {
  const x = parse(d);
  if (!x) return null;
  const neg = x.n < 0n;
  let digits = (neg ? -x.n : x.n).toString();
  let s = x.s;
  if (s < minPlaces) {
    digits += '0'.repeat(minPlaces - s);
    s = minPlaces;
  }
  if (s > 0) {
    digits = digits.padStart(s + 1, '0');
    digits = `${digits.slice(0, -s)}.${digits.slice(-s)}`;
  }
  const isZero = /^[0.]*$/.test(digits);
  return (neg && !isZero ? '-' : '') + digits;
}

/** A Number for charts and sparklines only (never for money shown as text). */
export function toNumber(a) {
  const x = parse(a);
  if (!x) return NaN;
  return Number(toString(x));
}
