"""Tools from MCP servers: the MCP_SERVERS file (`config.py`), one session per server held by
one event loop thread (`servers.py`; a session and the calls made on it: `links.py`), the names
the model is offered (`tool_names.py`) and what a call gave (`results.py`). The answer loop
that uses them is `bot.conversations.tooling`.
"""
