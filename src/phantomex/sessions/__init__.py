"""Sessions: a chosen set of agents, each from the same fresh wallet, on the same market for a
fixed time (live) or over a replay window; their summaries; and the leaderboard across them."""
