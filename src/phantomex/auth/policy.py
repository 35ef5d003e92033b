"""Where the server may listen: loopback freely, any other address only with auth on."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_problem(host: str, auth_configured: bool) -> str | None:
    """Why the server must not bind ``host`` (None if it may)."""
    if is_loopback(host) or auth_configured:
        return None
    return (
        f"refusing to listen on {host}: it is not a loopback address and authentication is "
        "not configured. Set a dashboard password (`phantomex auth set-password`) or create an "
        "API token (`phantomex auth token create NAME`) first, or bind 127.0.0.1."
    )
