"""The MCP server: PhantomEx's tools for AI assistants (``/mcp``, ``phantomex mcp``)."""
