"""The OpenAI-compatible model client: streaming, tool-call assembly, retries, errors.

The HTTP transport (`http`, on httpx) is imported only when a request is about to be made;
the openai SDK is not used at run time.
"""
