"""Authentication: a dashboard password, API tokens, login sessions and the bind-address policy."""
