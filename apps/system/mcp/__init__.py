"""MCP transport of the action registry: every action is a tool, over stdio and Streamable HTTP.

``tools`` turns registry actions into MCP tools and runs calls through ``run_action``; ``server``
builds the SDK server; ``stdio`` and ``http`` serve it.
"""
