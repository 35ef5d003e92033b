// Sessions and leaderboard helpers: the agent-line syntax of the start form (the CLI's --agent)
// and the basis of the leaderboard's ratios (figures are formatted by format.js).

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

/** A ratio basis from the API ({annualised, period_seconds, label}) in a few words for a column
 * heading: "annualised" or "per 1 min". */
export function basisShort(basis) {
  if (!basis) return '';
  if (basis.annualised) return 'annualised';
  const s = Number(basis.period_seconds);
  const units = [
    [86400, 'd'],
    [3600, 'h'],
    [60, 'min'],
  ];
  const [size, unit] = units.find(([n]) => s >= n) || [1, 's'];
  return `per ${Number((s / size).toFixed(2))} ${unit}`;
}
