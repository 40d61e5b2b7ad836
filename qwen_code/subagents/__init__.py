"""Subagents: agent definitions, the `agent` tool, and running agents inside a session."""
