"""Tandem as an MCP server (the official ``mcp`` SDK): the same tools over HTTP and stdio.

* :mod:`app.mcp.tools`: what each tool does, through the REST code paths;
* :mod:`app.mcp.server`: the ``MCPServer`` with the tools, their schemas and descriptions,
  the manifest resources, and REST's error codes;
* :mod:`app.mcp.http`: the streamable HTTP endpoint ``/mcp`` of the service (same keys);
* :mod:`app.mcp.stdio`: ``tandem mcp`` over stdin/stdout, reading the data dir directly.

The endpoint and its lifespan hook are ``app.mcp.http.mcp_mount`` and ``mcp_hook`` (listed in
:mod:`app.controllers`); this package imports nothing itself, as those modules use the
controllers' code paths.
"""
