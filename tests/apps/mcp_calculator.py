"""A small MCP server on stdio (the real `mcp` package): `add` and `divide`, which fails on 0.
Run as `python -m tests.apps.mcp_calculator`; the agent tests start it as their MCP server."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("calculator")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@server.tool()
def divide(a: int, b: int) -> float:
    """Divide a by b."""
    return a / b


if __name__ == "__main__":
    server.run("stdio")
