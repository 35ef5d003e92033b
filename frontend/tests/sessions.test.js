import { describe, expect, it } from 'vitest';
import { basisShort, parseAgentLine, parseAgents } from '../src/lib/sessions.js';

describe('session agent lines', () => {
  it('reads a rule strategy with parameters', () => {
    expect(parseAgentLine('max=sma_cross:fast=5,slow=20')).toEqual({
      name: 'max',
      brain: 'sma_cross',
      params: { fast: 5, slow: 20 },
    });
  });
  it('keeps colons and commas of values and reads the interval', () => {
    expect(parseAgentLine('bot=llm:endpoint=sim,model=qwen2.5:7b,interval=300')).toEqual({
      name: 'bot',
      brain: 'llm',
      params: { endpoint: 'sim', model: 'qwen2.5:7b' },
      interval_seconds: 300,
    });
  });
  it('refuses a line without a brain', () => {
    expect(() => parseAgentLine('nobrain')).toThrow(/NAME=BRAIN/);
    expect(parseAgents('a=rsi\n\n b=momentum ')).toHaveLength(2);
  });
});

describe('ratio basis', () => {
  it('says in a heading whether Sharpe is annualised or per period', () => {
    expect(basisShort({ annualised: false, period_seconds: 60 })).toBe('per 1 min');
    expect(basisShort({ annualised: false, period_seconds: 30 })).toBe('per 30 s');
    expect(basisShort({ annualised: true, period_seconds: 60 })).toBe('annualised');
    expect(basisShort(null)).toBe('');
  });
});
