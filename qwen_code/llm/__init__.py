"""The OpenAI-compatible model client: streaming, tool-call assembly, retries, errors.

`openai` is imported only when a request is about to be made.
"""
