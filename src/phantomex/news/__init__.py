"""News for LLM agents: the source port and its adapters (RSS/Atom feeds, CryptoPanic), their
settings, and recorded news files. Sources only produce :class:`~phantomex.domain.news.NewsItem`;
the store keeps them and the brains read them up to their clock."""
