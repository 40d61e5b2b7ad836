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

    def reset(self, messages: list[Message] | tuple[Message, ...] = ()) -> None:
        """Keep the system prompt, replace everything after it with `messages` (none: a
        fresh conversation, for /clear), repaired so the server accepts them. The object
        stays the same, so whoever holds it (the agent, observers) sees the new history."""
        system = [m for m in self.messages[:1] if m.get("role") == "system"]
        self.messages[:] = [*system, *messages]
        self.repair()

    def add_user(self, text: str, media: tuple[dict[str, Any], ...] = ()) -> None:
        """A user message; with `media` (image parts, `{"type": "image_url", ...}`) its
        content is a list of parts: the text, then the media."""
        if media:
            parts = [{"type": "text", "text": text}, *media]
            self.messages.append({"role": "user", "content": parts})
        else:
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

    def repair(self) -> list[str]:
        """Make the history one the server accepts, whatever produced it (a crash, a
        cancel, an old session file). Returns what was fixed, for logs.

        - every assistant tool call gets a result (a "cancelled" one when missing);
        - a tool message whose call is not in the assistant message before it is dropped;
        - two user messages in a row are merged;
        - tool-call arguments are valid JSON object strings (vLLM answers 500 otherwise).
        """
        fixes: list[str] = []
        repaired: list[Message] = []
        open_calls: list[str] = []
        for message in self.messages:
            role = message.get("role")
            if role == "tool":
                if message.get("tool_call_id") in open_calls:
                    open_calls.remove(message["tool_call_id"])
                    repaired.append(message)
                else:
                    fixes.append(f"dropped a result for unknown call {message.get('tool_call_id')}")
                continue
            _answer_open_calls(repaired, open_calls, fixes)
            if role == "assistant" and message.get("tool_calls"):
                message = _normalize_calls(message, fixes)
                open_calls = [call["id"] for call in message["tool_calls"]]
            if role == "user" and repaired and repaired[-1].get("role") == "user":
                repaired[-1] = _merge_user(repaired[-1], message)
                fixes.append("merged two user messages in a row")
                continue
            repaired.append(message)
        if fixes:
            self.messages[:] = repaired
        return fixes


def _answer_open_calls(messages: list[Message], open_calls: list[str], fixes: list[str]) -> None:
    for call_id in open_calls:
        messages.append({"role": "tool", "tool_call_id": call_id, "content": CANCELLED_RESULT})
        fixes.append(f"answered unanswered call {call_id}")
    open_calls.clear()


def _normalize_calls(message: Message, fixes: list[str]) -> Message:
    calls = []
    changed = False
    for index, call in enumerate(message["tool_calls"]):
        function = dict(call.get("function") or {})
        arguments = function.get("arguments")
        if not _is_json_object(arguments):
            function["arguments"] = "{}"
            changed = True
        call_id = call.get("id") or f"call_repaired_{index}"
        changed = changed or call_id != call.get("id")
        calls.append({**call, "id": call_id, "type": "function", "function": function})
    if changed:
        fixes.append("replaced tool-call arguments that were not a JSON object")
        return {**message, "tool_calls": calls}
    return message


def _is_json_object(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _merge_user(first: Message, second: Message) -> Message:
    """One user message with both contents: text joined as text; when either is a list of
    parts (images attached), the parts of both in order, so no image is lost."""
    a, b = first.get("content"), second.get("content")
    if not isinstance(a, list) and not isinstance(b, list):
        return {"role": "user", "content": f"{a or ''}\n\n{b or ''}"}
    return {"role": "user", "content": [*_parts(a), *_parts(b)]}


def _parts(content: Any) -> list[Any]:
    if isinstance(content, list):
        return list(content)
    return [{"type": "text", "text": content}] if content else []
