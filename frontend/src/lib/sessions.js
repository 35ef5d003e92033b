// Sessions and leaderboard helpers: the agent-line syntax of the start form (the CLI's --agent)
// and the figures' formatting.

/** "ruby=rsi:period=10" -> {name, brain, params}; "interval=300" sets interval_seconds. */
export function parseAgentLine(line) {
  const text = line.trim();
  const eq = text.indexOf('=');
  if (eq <= 0) throw new Error(`"${text}": write NAME=BRAIN[:key=value,...]`);
  const name = text.slice(0, eq).trim();
  const rest = text.slice(eq + 1);
  const colon = rest.indexOf(':');
  const brain = (colon < 0 ? rest : rest.slice(0, colon)).trim();
  if (!brain) throw new Error(`"${text}": the brain is missing`);
  const params = {};
  const pairs = [];
  for (const part of colon < 0 ? [] : rest.slice(colon + 1).split(',')) {
    if (pairs.length && !part.includes('=')) pairs[pairs.length - 1] += `,${part}`;
    else if (part.trim()) pairs.push(part.trim());
  }
  const agent = { name, brain, params };
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    const key = pair.slice(0, at).trim();
    const raw = pair.slice(at + 1).trim();
    const num = Number(raw);
    const value = raw !== '' && Number.isFinite(num) ? num : raw;
    if (key === 'interval') agent.interval_seconds = value;
    else params[key] = value;
  }
  return agent;
}

export function parseAgents(text) {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map(parseAgentLine);
}

export function clock(seconds) {
  if (seconds == null) return '—';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

export function pct(value, digits = 2) {
  if (value == null) return '—';
  const v = value * 100;
  return `${v > 0 ? '+' : ''}${v.toFixed(digits)}%`;
}

export function num(value) {
  return value == null ? '—' : value.toFixed(2);
}

/** "value [lo, hi]" of a leaderboard figure {value, ci}. */
export function withInterval(fig, fmt) {
  if (!fig) return '—';
  const text = fmt(fig.value);
  return fig.ci ? `${text} [${fmt(fig.ci[0])}, ${fmt(fig.ci[1])}]` : text;
}
