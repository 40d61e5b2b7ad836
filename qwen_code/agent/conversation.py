"""The conversation as OpenAI chat messages, kept valid for the server at all times.

Messages are plain dicts in the wire format. Tool-call arguments are always replayed as
a JSON object string (vLLM answers HTTP 500 to anything else), and every assistant
tool call gets a result, even when the turn was cancelled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from qwen_code.agent.events import ToolCall

Message = dict[str, Any]
CANCELLED_RESULT = "The tool call was cancelled before it finished (the user interrupted)."


@dataclass(slots=True)
class Conversation:
    """The message list sent to the model; the system prompt is the first message."""

    messages: list[Message] = field(default_factory=list)

    @classmethod
    def with_system(cls, system_prompt: str) -> Conversation:
        return cls([{"role": "system", "content": system_prompt}])

    def add_user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

    def add_assistant(self, text: str, tool_calls: tuple[ToolCall, ...] = ()) -> None:
        message: Message = {"role": "assistant", "content": text or None}
        if tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": json.dumps(call.arguments, ensure_ascii=False),
                    },
                }
                for call in tool_calls
            ]
        elif not text:
            message["content"] = ""
        self.messages.append(message)

    def add_tool_result(self, call_id: str, content: str) -> None:
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": content})

    def pending_tool_calls(self) -> list[str]:
        """Ids of the last assistant message's tool calls that have no result yet."""
        for index in range(len(self.messages) - 1, -1, -1):
            message = self.messages[index]
            if message["role"] == "assistant":
                answered = {m.get("tool_call_id") for m in self.messages[index + 1 :]}
                ids = [c["id"] for c in message.get("tool_calls") or ()]
                return [i for i in ids if i not in answered]
        return []

    def close_pending(self, content: str = CANCELLED_RESULT) -> None:
        """Answer every unanswered tool call, so the next request is valid."""
        for call_id in self.pending_tool_calls():
            self.add_tool_result(call_id, content)
