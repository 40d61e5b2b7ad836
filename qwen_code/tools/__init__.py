"""Built-in tools: one module each, arguments as pydantic models, one registry."""
