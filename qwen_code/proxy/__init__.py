"""`qwen-code proxy`: an Anthropic Messages API in front of an OpenAI-compatible backend.

Claude Code (or any Anthropic client) talks to the proxy; the proxy runs each request on
qwen-code's own `ChatClient`. `translate` maps requests, responses and errors between the
two formats and `events` turns the client's stream into Anthropic stream events (pure
functions, no I/O); `server` serves them over HTTP.

A subsystem: it may import `qwen_code.llm`, `qwen_code.errors` and `qwen_code.config`, and
only `qwen_code/cli*.py` imports it.
"""
