"""``server deploy``: fetch a version into the host's checkout, install it, migrate the
database, restart, check ``/health``; on any failure after the checkout, roll back.

The steps, each a host command (see :mod:`phantomex.cli.remote.hosts`):

1. ``git fetch`` and resolve the ref (``<remote>/<ref>`` first, else a tag or commit); nothing
   on the host changes if this fails.
2. ``git checkout --detach`` of the new commit, ``install``, ``stop``, ``backup`` of the database,
   ``migrate``, ``start`` and a health check through the SSH connection.
3. If one fails: ``git checkout`` of the previous commit, ``install``, ``stop``, ``restore`` of
   the backup (the database as it was before the deploy), ``start`` and a health check.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from dataclasses import dataclass

from phantomex.cli.remote.ssh import Emit, Remote


class StepFailed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step, self.reason = step, reason


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a deploy ended. ``rollback`` is None when nothing had to be undone, else the
    rollback's own failure ("" when it succeeded)."""

    old: str
    new: str | None
    failure: StepFailed | None = None
    rollback: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


class Deploy:
    def __init__(self, remote: Remote, say: Emit, out: Emit) -> None:
        self.remote, self.host, self.say, self.out = remote, remote.host, say, out
        self.backed_up = False  # the database was copied before the migration

    async def _step(self, name: str, command: str, *, show: bool = True) -> str:
        """Run one step's command; StepFailed with the end of its output if it fails."""
        if not command:
            self.say(f"{name}: skipped (no command configured)")
            return ""
        if show:
            self.say(f"{name} …")
        ran = await self.remote.run(command, self.out if show else None)
        if not ran.ok:
            tail = " | ".join(ran.output.strip().splitlines()[-3:])
            raise StepFailed(name, f"exit status {ran.status}" + (f": {tail}" if tail else ""))
        return ran.output.strip()

    async def _git(self, name: str, args: str, *, show: bool = True) -> str:
        cd = f"cd {shlex.quote(self.host.checkout)}"
        return await self._step(name, f"{cd} && git {args}", show=show)

    async def _resolve(self, ref: str) -> str:
        remote_ref = shlex.quote(f"{self.host.git_remote}/{ref}^{{commit}}")
        plain = shlex.quote(f"{ref}^{{commit}}")
        return await self._git(
            f"resolve {ref}",
            f"rev-parse --verify --quiet {remote_ref} || git rev-parse --verify --quiet {plain}",
            show=False,
        )

    async def _healthy(self, name: str) -> None:
        """Poll ``/health`` until it answers; fail early when the service manager reports the
        service down (a release that crashes at start need not wait the whole timeout)."""
        host = self.host
        self.say(f"{name}: waiting up to {host.health_timeout:g} s for {host.health_url}")
        deadline = time.monotonic() + host.health_timeout
        status = host.command("status")
        while True:
            answer = await self.remote.health()
            if answer is not None:
                self.say(f"{name}: ok (clock {answer.get('clock')}, {answer.get('agents')} agents)")
                return
            if status:
                ran = await self.remote.run(status)
                if not ran.ok:
                    last = ran.output.strip().splitlines()[-1:] or [f"exit status {ran.status}"]
                    raise StepFailed(name, f"the service is not running ({last[0]})")
            if time.monotonic() >= deadline:
                raise StepFailed(name, f"no healthy answer within {host.health_timeout:g} s")
            await asyncio.sleep(1.0)

    async def _release(self, commit: str, old: str, *, restore: bool) -> None:
        """Check ``commit`` out, install it and (re)start the service on it."""
        await self._git("checkout", f"checkout --quiet --detach {shlex.quote(commit)}")
        await self._step("install", self.host.command("install"))
        await self._step("stop", self.host.command("stop"))
        if restore:
            await self._step("restore", self.host.command("restore", old=old))
        else:
            backup = self.host.command("backup", old=old)
            await self._step("backup", backup)
            self.backed_up = bool(backup)
            await self._step("migrate", self.host.command("migrate"))
        await self._step("start", self.host.command("start"))
        await self._healthy("health")

    async def run(self, ref: str) -> Outcome:
        old = ""
        try:
            old = await self._git("current commit", "rev-parse --verify HEAD", show=False)
            await self._git("fetch", f"fetch --quiet --tags {shlex.quote(self.host.git_remote)}")
            new = await self._resolve(ref)
        except StepFailed as exc:
            return Outcome(old, None, exc)  # nothing on the host has changed
        self.say(f"deploying {new[:12]} ({ref}) over {old[:12]}")
        try:
            await self._release(new, old, restore=False)
        except StepFailed as exc:
            self.say(f"deploy failed at {exc}; rolling back to {old[:12]}")
            try:
                await self._release(old, old, restore=self.backed_up)
            except StepFailed as again:
                return Outcome(old, new, exc, str(again))
            return Outcome(old, new, exc, "")
        return Outcome(old, new)
