"""The MCP server: PhantomEx's tools for AI assistants (``/mcp`` on the server, ``phantomex mcp``)."""
