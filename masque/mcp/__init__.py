"""`masque mcp`: the Model Context Protocol surface, built on the official SDK (`pip install 'masque[mcp]'`).

Modules: `server` builds the `MCPServer` (tools, resources, prompts) for a way of proving identity;
`connections` keeps the one worn session of each MCP connection; `tools` holds the tool bodies, which
call the same library functions as the CLI; `results` the typed (structured) tool outputs; `http` the
bearer-checked streamable HTTP app; `install` the client config entries. Nothing here is imported by
`masque --help`: the CLI imports `masque.mcp.server` inside `masque mcp` only.
"""
