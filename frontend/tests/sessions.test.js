import { describe, expect, it } from 'vitest';
import { clock, parseAgentLine, parseAgents, pct, withInterval } from '../src/lib/sessions.js';

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

describe('formatting', () => {
  it('formats timers, percentages and intervals', () => {
    expect(clock(3725)).toBe('1:02:05');
    expect(pct(0.0123)).toBe('+1.23%');
    expect(withInterval({ value: 0.01, ci: [-0.02, 0.03] }, pct)).toBe('+1.00% [-2.00%, +3.00%]');
    expect(withInterval({ value: null, ci: null }, pct)).toBe('—');
  });
});
