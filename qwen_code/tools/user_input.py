"""How a tool reaches the person at the keyboard: multiple-choice questions
(`ask_user_question`) and the approval of a plan (`exit_plan_mode`).

A front end that has a user (the REPL) sets `ToolContext.user` to a `UserChannel`;
headless runs and subagents leave it None, and the tools then tell the model that nobody
can answer. The question models double as the tool's parameters (the JSON schema the
model sees comes from them), so their field docstrings are written for the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

PlanMode: TypeAlias = Literal["auto-edit", "default"]
"""The approval modes a user may continue in after approving a plan."""


class Option(BaseModel):
    """One choice of a question."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    label: str = Field(min_length=1)
    """1-5 words."""
    description: str
    """What choosing it means."""


class Question(BaseModel):
    """One question with 2-4 options; the user may always type their own answer instead."""

    model_config = ConfigDict(
        use_attribute_docstrings=True, extra="forbid", validate_by_name=True, validate_by_alias=True
    )

    question: str = Field(min_length=1)
    """The full question, ending with '?'."""
    header: str = Field(min_length=1)
    """A short tag, max 12 chars, e.g. "Auth method"."""
    options: list[Option] = Field(min_length=2, max_length=4)
    """Distinct choices, without "Other" (the user always has it)."""
    multi_select: bool = Field(default=False, alias="multiSelect")
    """Allow picking several options."""


@dataclass(frozen=True, slots=True)
class Answer:
    """The user's answer to one question: the labels chosen (several with multi-select)
    and/or their own text ("Other")."""

    labels: tuple[str, ...] = ()
    other: str = ""

    def describe(self) -> str:
        """The answer as one line: chosen labels, then the typed text in quotes."""
        parts = list(self.labels)
        if self.other:
            parts.append(f'"{self.other}"')
        return ", ".join(parts) if parts else "(nothing selected)"


@dataclass(frozen=True, slots=True)
class PlanReview:
    """What the user said about a plan: approved (and the mode to carry it out in), or
    keep planning (with what to change, when they said)."""

    approved: bool
    mode: PlanMode | None = None
    feedback: str = ""


class UserChannel(Protocol):
    """A front end's way to ask the user while a turn runs."""

    async def ask(self, questions: Sequence[Question]) -> list[Answer] | None:
        """One answer per question, in order; None when the user dismissed them (Esc)."""
        ...

    async def review_plan(self, plan: str) -> PlanReview:
        """Show the plan (Markdown) and ask whether to carry it out, and in which mode."""
        ...
