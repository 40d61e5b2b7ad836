"""Serving Qwen3-Coder yourself: plan the hardware, start an engine, compare the cost.

`catalog` (data files: models, GPUs, prices, throughput), `plan` (pure sizing), `engines`
(command lines), `launch` (process lifecycle), `gpus` (nvidia-smi), `cost` (self-host vs API).
Front end: `qwen_code/cli_serve.py`.
"""
