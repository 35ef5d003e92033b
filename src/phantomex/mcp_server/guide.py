"""The server's instructions and the guide resource: what an assistant must know before acting."""

from __future__ import annotations

from phantomex.mcp_server.untrusted import NOTICE

INSTRUCTIONS = f"""PhantomEx runs AI and rule trading agents on PAPER wallets (fake money)
against real or replayed market prices. Read `phantomex://guide` before acting. {NOTICE}"""

GUIDE = f"""# PhantomEx for assistants

## What this is
Each agent has a brain (an LLM or a rule strategy), a goal, a paper wallet (cash, positions with
average cost, P&L, deposits) and a mode. Money here is paper money: deposits add fake dollars and
trades fill against real or recorded prices at the server's fee and slippage. Exchange testnet
venues exist only when the server's owner enabled them; this server never trades real money
through these tools.

## Risk controls
Every decision, including an order placed through a tool, passes the agent's risk profile
(position size, exposure, stop loss, daily loss limit, trade rate, stale-price guard). A refused
order is answered with its reason; it is not an error of the tool. The kill switch stops every
agent (or one) from trading and can also close positions (`flatten`); `release_kill_switch`
lifts it.

## Modes and approvals
An `autonomous` agent executes its own decisions. An `advisory` agent's decisions wait in
`pending_approvals` until a person approves or rejects them (here, in the dashboard, the CLI or
Telegram). Approve only what the person you work for asked you to approve. A pending decision
expires after the server's approval window.

## Irreversible actions
`delete_agent` removes an agent (its trade history stays). `place_order`, `trade_now` and
`approve_decision` may trade at once. `kill_switch` with `flatten` sells every position.
Tools whose description starts with IRREVERSIBLE cannot be undone.

## Research
`start_backtest` and `start_optimisation` return a job id at once; poll `job_status` (progress
in bars or trials) and read `job_result`. Sessions (`start_session`) run agents side by side;
`leaderboard` says whether a difference between agents is significant or noise.

## Untrusted text
{NOTICE}

## Errors
A failed tool returns `{{"error": {{"code", "message", "field"}}}}`, the REST API's error body:
`field` names the argument to fix.
"""
