import { describe, expect, it } from 'vitest';
import { add, cmp, div, mul, parse, round, sub, sum, toString } from '../src/lib/decimal.js';
import { fmtMoney, fmtPct, fmtPrice, fmtQty } from '../src/lib/format.js';

describe('decimal', () => {
  it('adds and multiplies exactly', () => {
    expect(add('0.1', '0.2')).toBe('0.3');
    expect(sub('10000', '10000.01')).toBe('-0.01');
    expect(mul('1.647500741375333618900128505', '1822.94')).toBe(
      '3003.2950014827506672378002569047',
    );
    expect(sum(['10000', '9976.555', '-0.555'])).toBe('19976');
    expect(div('-23.44', '10000', 6)).toBe('-0.002344');
    expect(div('1', '0')).toBe(null);
  });

  it('parses exponents and rejects junk', () => {
    expect(toString(parse('1e-7'))).toBe('0.0000001');
    expect(toString(parse('2.5E3'))).toBe('2500');
    expect(parse('abc')).toBe(null);
    expect(parse(null)).toBe(null);
    expect(cmp('2', '10')).toBe(-1);
  });

  it('rounds half away from zero', () => {
    expect(round('2.345', 2)).toBe('2.35');
    expect(round('-2.345', 2)).toBe('-2.35');
    expect(round('-0.001', 2)).toBe('0.00');
  });
});

describe('format', () => {
  it('formats money, percents, prices and quantities for display', () => {
    expect(fmtMoney('10000')).toBe('$10,000.00');
    expect(fmtMoney('-23.444967579750415526988214', { signed: true })).toBe('\u2212$23.44');
    expect(fmtMoney('6.46', { signed: true })).toBe('+$6.46');
    expect(fmtPct('-0.2344496757975041552698821400')).toBe('\u22120.23%');
    expect(fmtPct(null)).toBe('–');
    expect(fmtPrice('28500.77')).toBe('28,500.77');
    expect(fmtPrice('21.17')).toBe('21.17');
    expect(fmtPrice('0.08206')).toBe('0.08206');
    expect(fmtQty('1.647500741375333618900128505')).toBe('1.64750074');
  });
});
