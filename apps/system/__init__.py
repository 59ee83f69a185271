"""The operator surface: action registry, permissions (app label ``system``), tokens, HTTP and MCP."""
