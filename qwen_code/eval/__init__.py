"""`qwen-code eval`: many headless agent runs on a task set, each in its own sandboxed
workspace, validated by running the task's tests; summaries and comparisons."""
