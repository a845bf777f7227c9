"""`masque serve`: one long-lived process serving the REST API (FastAPI), beside the MCP app at /mcp.

Modules (import them by name; this package imports nothing, so `masque --help` stays light):
  app       `create_app(mounts=...)`: the FastAPI app, its routers, problem-details handlers, extra mounts
  auth      the bearer dependency: `Authorization: Bearer msqk_.../msq_...` -> a proven `Selection`
  problems  masque.errors -> RFC 9457 problem details (status, reason, exit_code, hint)
  models    pydantic request and response bodies
  masks     POST /masks/activate, /masks/generate (streamed), /masks/deactivate
  registry  GET /masques, /masques/{ref}, POST /check
  sessions  GET /sessions
  stats     GET /stats/{level}
  memory    GET /memory/{masque}/search, POST /memory/{masque}
  teams     POST/GET /teams, GET /teams/{ref}, POST .../release; the bus: POST/GET /teams/{ref}/bus,
            GET .../bus/stream (server-sent events), POST .../bus/{conflict_id}/resolve
  mcp_mount the MCP streamable-HTTP endpoint at /mcp (behind the same bearer check), when the SDK is installed

Every route is a plain `def`: FastAPI runs it in its thread pool, and each opens the DuckDB store in a
turn for its own operation, exactly as a CLI process does, so CLI commands keep working beside it.
"""
