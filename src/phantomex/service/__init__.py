"""The command-and-query layer: the one way front ends (REST, WebSocket, Telegram, the CLI
through the API, the MCP server) change and read the kernel's state.

``Service(kernel)`` bundles :class:`~phantomex.service.commands.Commands` (each takes the
kernel's lock itself) and :class:`~phantomex.service.queries.Queries` (typed read models), and a
server's exchange venues and news (:class:`~phantomex.service.news.News`)."""

from __future__ import annotations

from dataclasses import dataclass

from phantomex.broker.venues import ExchangeSettings
from phantomex.kernel.runtime import Kernel, KernelError
from phantomex.news.settings import NewsSettings
from phantomex.secrets import SecretBox
from phantomex.service.commands import Commands
from phantomex.service.news import News
from phantomex.service.queries import Queries
from phantomex.service.venues import Venues
from phantomex.store.port import NewsStore
from phantomex.store.repo import Store

__all__ = ["Commands", "News", "Queries", "Service", "Venues"]


@dataclass(frozen=True, slots=True)
class Service:
    """The commands and queries over one kernel (and a server's exchange venues)."""

    commands: Commands
    queries: Queries
    exchange: Venues | None = None
    newsroom: News | None = None

    @classmethod
    def of(
        cls,
        kernel: Kernel,
        *,
        llm_static: frozenset[str] = frozenset(),
        venues: tuple[Store, SecretBox, ExchangeSettings] | None = None,
        news: tuple[NewsStore, NewsSettings] | None = None,
    ) -> Service:
        """The service over ``kernel``. ``llm_static``: the settings file's LLM endpoints;
        ``venues``: a server's SQL store, secret box and exchange settings, for
        :class:`Venues` (absent: exchange venues are not served); ``news``: the store news is
        kept in and the ``[news]`` settings (absent: news is not served)."""
        return cls(
            Commands(kernel, llm_static=llm_static),
            Queries(kernel),
            Venues(kernel, *venues) if venues is not None else None,
            News(*news, wall=kernel.clock.now) if news is not None else None,
        )

    def venues(self) -> Venues:
        """The exchange venues (KernelError when this service serves none)."""
        if self.exchange is None:
            raise KernelError("exchange trading is not set up on this server", code="not_found")
        return self.exchange

    def news(self) -> News:
        """The news of this server (KernelError when it serves none)."""
        if self.newsroom is None:
            raise KernelError("news is not set up on this server", code="not_found")
        return self.newsroom
