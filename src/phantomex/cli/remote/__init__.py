"""``phantomex server …``: a PhantomEx installed as a systemd service on another machine, run
over SSH (status, start, stop, restart, logs, and a deploy that rolls back a failed release)."""
