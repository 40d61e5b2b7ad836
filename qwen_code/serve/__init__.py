"""Serving Qwen3-Coder yourself: plan the hardware, start an engine, compare the cost.

`catalog` (data files: models, GPUs, prices, throughput), `gguf_file` (a local GGUF file's
metadata), `host` (RAM and threads for the CPU plan), `request` (command-line words to a plan
request), `plan` (pure sizing, GPUs or CPU), `engines` (command lines), `discover` (where
llama-server is), `launch` (process lifecycle, readiness), `gpus` (nvidia-smi), `cost`
(self-host vs API). Front end: `qwen_code/cli_serve.py`.
"""
