"""Front ends: the only package that may import rich and prompt_toolkit."""
