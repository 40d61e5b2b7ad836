"""The agent loop: conversation state, approval policy and the events it emits."""
