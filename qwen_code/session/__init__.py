"""Saved sessions (JSONL transcripts, resume, named chats) and workspace checkpoints."""
