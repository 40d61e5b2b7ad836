"""Images and PDFs: `read_file` on them, `@image` in a headless prompt, the context budget
and compression with images, and which models take images.

Models are the scripted server's; a vision-capable one is picked by name (the catalog)
or by the setting `model.generationConfig.modalities`, and `visionModel` requests are told
apart from the main model's by `body["model"]`.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from qwen_code.agent.compress import IMAGE_REMOVED, Compressor
from qwen_code.agent.context import ContextBudget, message_tokens
from qwen_code.agent.conversation import Conversation
from qwen_code.config import Flags, load_settings, qwen_home, resolve_provider
from qwen_code.llm.client import ChatClient
from qwen_code.llm.modalities import (
    MODALITIES_KEY,
    Modalities,
    SessionModalities,
    card_says,
    data_url_size,
    image_tokens,
    modalities_of,
    takes_images,
    takes_pdf,
)
from qwen_code.session.store import SessionWriter, load
from qwen_code.settings_model import Settings
from qwen_code.tools.base import ToolContext, ToolError
from qwen_code.tools.media import MAX_PDF_PAGES, load_image
from qwen_code.tools.read import ReadFileTool
from qwen_code.ui.headless import run_headless
from tests.fakeserver import FakeLLM, Turn, call, text, tool_turn
from tests.helpers import session_for
from tests.llm_helpers import make_config

TOOL = ReadFileTool()
VISION = "qwen3-vl-plus"


def png(path: Path, size: tuple[int, int] = (280, 140), color: str = "red") -> Path:
    Image.new("RGB", size, color).save(path, format="PNG")
    return path


def image_parts(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return []
    return [p for p in content if p.get("type") == "image_url"]


def decoded(part: dict[str, Any]) -> Image.Image:
    url = part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def settings_file(root: Path, data: dict[str, Any]) -> None:
    (root / ".qwen").mkdir(exist_ok=True)
    (root / ".qwen" / "settings.json").write_text(json.dumps(data))


async def run(root: Path, prompt: str, **flags: Any) -> list[Any]:
    session = await session_for(root, **flags)
    try:
        return [event async for event in session.run(prompt)]
    finally:
        await session.aclose()


def requests_of(fake: FakeLLM, model: str) -> list[dict[str, Any]]:
    return [r.body for r in fake.chat_requests if r.body and r.body.get("model") == model]


# --- which models take images ---------------------------------------------------------------


def test_the_catalog_knows_vision_models_by_name() -> None:
    settings = Settings()
    for model in (
        "qwen3-vl-plus",
        "qwen-vl-max-latest",
        "Qwen/Qwen2.5-VL-72B-Instruct",
        "qwen2.5vl:7b",
        "qvq-max",
        "qwen-omni-turbo",
        "gpt-4o-mini",
        "gpt-4.1",
        "claude-sonnet-4-5",
        "gemini-2.5-pro",
    ):
        assert takes_images(settings, model), model
    for model in ("qwen3-coder-plus", "Qwen/Qwen3-Coder-30B-A3B-Instruct", "deepseek-chat"):
        assert not takes_images(settings, model), model


def test_the_setting_wins_over_the_catalog_and_the_card() -> None:
    on = Settings.model_validate({"model": {"generationConfig": {"modalities": {"image": True}}}})
    off = Settings.model_validate(
        {"model": {"generationConfig": {"modalities": {"image": False, "pdf": True}}}}
    )
    card = [{"id": "local", "architecture": {"input_modalities": ["text", "image"]}}]
    assert takes_images(on, "qwen3-coder-plus")
    assert not takes_images(off, VISION, card)
    assert takes_pdf(off, VISION)
    assert takes_images(Settings(), "local", card)
    assert not takes_pdf(Settings(), "qwen3-coder-plus")


def test_the_sessions_modalities_follow_a_switch_of_model() -> None:
    current = ["qwen3-coder-plus"]
    settings = Settings.model_validate({"visionModel": VISION})
    modalities = SessionModalities(settings, lambda: current[0])
    assert modalities() == Modalities(model="qwen3-coder-plus", vision_model=VISION)
    current[0] = "qwen3-vl-max"
    assert modalities().image and modalities().pdf
    assert modalities_of({MODALITIES_KEY: modalities}).model == "qwen3-vl-max"
    assert modalities_of({}) == Modalities()


def test_model_cards_are_read_tolerantly() -> None:
    assert card_says({"architecture": {"modality": "text+image->text"}}, "image") is True
    assert card_says({"architecture": {"modality": "text->text"}}, "image") is False
    assert card_says({"input_modalities": ["text"]}, "image") is False
    assert card_says({"capabilities": ["completion", "vision"]}, "image") is True
    assert card_says({"capabilities": {"vision": False}}, "image") is False
    assert card_says({"architecture": "odd", "capabilities": None}, "image") is None
    assert card_says({}, "image") is None


# --- read_file on an image --------------------------------------------------------------------


async def test_a_vision_model_sees_the_image_after_the_tool_result(
    tmp_path: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_MODEL", VISION)
    png(tmp_path / "shot.png", (300, 200))
    fake_llm.script(tool_turn(call("read_file", file_path="shot.png")), text("A red box."))
    await run(tmp_path, "What is in shot.png?")
    messages = fake_llm.chat_requests[1].body["messages"]  # type: ignore[index]
    at = next(i for i, m in enumerate(messages) if m["role"] == "tool")
    assert messages[at]["content"].startswith("Image: shot.png (300x200")
    after = messages[at + 1]
    assert after["role"] == "user"
    (part,) = image_parts(after["content"])
    assert decoded(part).size == (300, 200)


async def test_the_modalities_setting_makes_any_model_take_images(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    settings_file(tmp_path, {"model": {"generationConfig": {"modalities": {"image": True}}}})
    png(tmp_path / "big.png", (4000, 3000))
    fake_llm.script(tool_turn(call("read_file", file_path="big.png")), text("Seen."))
    await run(tmp_path, "Look at big.png")
    messages = fake_llm.chat_requests[1].body["messages"]  # type: ignore[index]
    (part,) = image_parts(messages[-1]["content"])
    width, height = decoded(part).size
    assert max(width, height) <= 2048 and width * height <= 1_150_000
    assert "scaled down from 4000x3000" in messages[-2]["content"]


async def test_a_text_only_model_gets_the_vision_models_description(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    settings_file(tmp_path, {"visionModel": VISION})
    png(tmp_path / "shot.png")

    def by_model(body: dict[str, Any]) -> Turn:
        if body["model"] == VISION:
            return text("A red rectangle with no text.")
        has_tool_result = any(m["role"] == "tool" for m in body["messages"])
        return (
            text("It is red.")
            if has_tool_result
            else tool_turn(call("read_file", file_path="shot.png"))
        )

    fake_llm.script(by_model, by_model, by_model)
    await run(tmp_path, "What is in shot.png?")
    (vision,) = requests_of(fake_llm, VISION)
    (part,) = image_parts(vision["messages"][0]["content"])
    assert decoded(part).size == (280, 140)
    main = requests_of(fake_llm, "qwen3-coder-plus")
    assert len(main) == 2
    assert not any(image_parts(m.get("content")) for body in main for m in body["messages"])
    tool_result = next(m for m in main[1]["messages"] if m["role"] == "tool")["content"]
    assert f"so {VISION} described it" in tool_result
    assert tool_result.endswith("A red rectangle with no text.")


async def test_without_a_vision_model_the_model_is_told_how_to_get_one(
    tmp_path: Path, ctx: ToolContext, root: Path
) -> None:
    png(root / "shot.png")
    ctx.state[MODALITIES_KEY] = Modalities(model="qwen3-coder-plus")
    with pytest.raises(ToolError, match=r"qwen3-coder-plus cannot see images.*visionModel"):
        await TOOL.run(TOOL.Params(file_path="shot.png"), ctx)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a valid image"),
        (b"GIF89a" + b"\x01" * 20, "not a valid image"),
    ],
)
async def test_broken_images_get_a_clear_error(
    root: Path, ctx: ToolContext, data: bytes, error: str
) -> None:
    (root / "broken.png").write_bytes(data)
    ctx.state[MODALITIES_KEY] = Modalities(image=True)
    with pytest.raises(ToolError, match=error):
        await TOOL.run(TOOL.Params(file_path="broken.png"), ctx)


async def test_image_formats_are_converted_for_the_model(root: Path, ctx: ToolContext) -> None:
    ctx.state[MODALITIES_KEY] = Modalities(image=True)
    for name, kind in (("a.gif", "GIF"), ("a.webp", "WEBP"), ("a.bmp", "BMP"), ("a.jpg", "JPEG")):
        Image.new("RGB", (64, 48), "blue").save(root / name, format=kind)
        out = await TOOL.run(TOOL.Params(file_path=name), ctx)
        (part,) = out.media
        mime = "image/jpeg" if kind == "JPEG" else "image/png"
        assert part["image_url"]["url"].startswith(f"data:{mime};base64,")
        assert (out.data["width"], out.data["height"]) == (64, 48)


# --- PDFs -------------------------------------------------------------------------------------


def text_page(writer: PdfWriter, words: str) -> None:
    """A page whose content stream draws `words` with a standard font."""
    page = writer.add_blank_page(612, 792)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    fonts = DictionaryObject({NameObject("/F1"): writer._add_object(font)})
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 24 Tf 72 700 Td ({words}) Tj ET".encode())
    page[NameObject("/Contents")] = writer._add_object(stream)


def make_pdf(path: Path, pages: int, *, picture: bool = False, password: str | None = None) -> Path:
    writer = PdfWriter()
    for number in range(1, pages + 1):
        text_page(writer, f"Hello from page {number}")
    if picture:  # a page holding a picture (Pillow writes it as an embedded JPEG)
        raw = io.BytesIO()
        Image.new("RGB", (200, 100), "green").save(raw, format="PDF")
        writer.add_page(PdfReader(raw).pages[0])
    if password is not None:
        writer.encrypt(password, algorithm="RC4-128")
    with path.open("wb") as fh:
        writer.write(fh)
    return path


async def test_pdf_pages_come_back_as_text_with_page_markers(root: Path, ctx: ToolContext) -> None:
    make_pdf(root / "doc.pdf", 5)
    out = await TOOL.run(TOOL.Params(file_path="doc.pdf", pages="2-3"), ctx)
    assert out.content.startswith("[PDF doc.pdf: pages 2-3 of 5.]")
    assert "--- page 2 of 5 ---\nHello from page 2" in out.content
    assert "--- page 3 of 5 ---\nHello from page 3" in out.content
    assert "page 1" not in out.content and "page 4" not in out.content
    assert out.data["pages"] == [2, 3] and out.media == ()
    whole = await TOOL.run(TOOL.Params(file_path="doc.pdf"), ctx)
    assert "Hello from page 5" in whole.content


async def test_a_long_pdf_is_read_twenty_pages_at_a_time(root: Path, ctx: ToolContext) -> None:
    make_pdf(root / "long.pdf", MAX_PDF_PAGES + 3)
    out = await TOOL.run(TOOL.Params(file_path="long.pdf"), ctx)
    assert f"Hello from page {MAX_PDF_PAGES}" in out.content
    assert f"page {MAX_PDF_PAGES + 1}\n" not in out.content
    assert 'pages="21-23"' in out.content
    with pytest.raises(ToolError, match="at most 20"):
        await TOOL.run(TOOL.Params(file_path="long.pdf", pages="1-21"), ctx)


@pytest.mark.parametrize(
    ("pages", "error"),
    [("4-9", "out of range: the PDF has 3"), ("0", "numbered from 1"), ("one", "not a page range")],
)
async def test_bad_page_ranges_are_explained(
    root: Path, ctx: ToolContext, pages: str, error: str
) -> None:
    make_pdf(root / "doc.pdf", 3)
    with pytest.raises(ToolError, match=error):
        await TOOL.run(TOOL.Params(file_path="doc.pdf", pages=pages), ctx)


async def test_encrypted_and_damaged_pdfs_and_pages_on_text_files(
    root: Path, ctx: ToolContext
) -> None:
    make_pdf(root / "locked.pdf", 1, password="secret")
    with pytest.raises(ToolError, match="encrypted"):
        await TOOL.run(TOOL.Params(file_path="locked.pdf"), ctx)
    data = (root / "locked.pdf").read_bytes()
    (root / "cut.pdf").write_bytes(data[: len(data) // 3])
    with pytest.raises(ToolError, match="not a readable PDF"):
        await TOOL.run(TOOL.Params(file_path="cut.pdf"), ctx)
    (root / "notes.txt").write_text("hi\n")
    with pytest.raises(ToolError, match="PDF files only"):
        await TOOL.run(TOOL.Params(file_path="notes.txt", pages="1"), ctx)


async def test_pdf_page_images_go_to_a_model_that_takes_images(
    root: Path, ctx: ToolContext
) -> None:
    make_pdf(root / "deck.pdf", 1, picture=True)
    out = await TOOL.run(TOOL.Params(file_path="deck.pdf"), ctx)
    assert out.media == ()
    ctx.state[MODALITIES_KEY] = Modalities(image=True, pdf=True)
    out = await TOOL.run(TOOL.Params(file_path="deck.pdf"), ctx)
    (part,) = out.media
    assert data_url_size(part["image_url"]["url"]) == (200, 100)
    assert "1 image(s) from these pages are attached below" in out.content
    assert "--- page 2 of 2 ---\n(no text on this page" in out.content


# --- the context budget and compression ------------------------------------------------------


def image_message(size: tuple[int, int], text: str = "look", noise: bool = False) -> dict[str, Any]:
    image = Image.effect_noise(size, 80).convert("RGB") if noise else Image.new("RGB", size)
    raw = io.BytesIO()
    image.save(raw, format="PNG")
    part = load_image(raw.getvalue()).part
    return {"role": "user", "content": [{"type": "text", "text": text}, part]}


def test_an_image_counts_as_its_patches_not_its_base64_length() -> None:
    plain = image_message((280, 280))
    noisy = image_message((280, 280), noise=True)
    assert len(json.dumps(noisy)) > 50 * len(json.dumps(plain))
    assert message_tokens(plain) == message_tokens(noisy)
    (part,) = image_parts(plain["content"])
    assert image_tokens(part) == 100 + 2  # 10 x 10 patches of 28 pixels, and the markers
    assert message_tokens(plain) == 4 + 102 + 2  # the template, the image, "look"
    budget = ContextBudget(window=100_000)
    assert budget.estimate_all([plain], None) == message_tokens(plain)
    url = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    assert image_tokens(url) == 1000  # no header to read: a fixed estimate


def history_with_images() -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are helpful."},
        image_message((1120, 1120), "first screenshot"),
        {"role": "assistant", "content": "I see the first one."},
        image_message((1120, 1120), "second screenshot"),
        {"role": "assistant", "content": "I see the second one."},
        image_message((560, 560), "and this one, now"),
    ]


async def test_compression_drops_old_images_before_any_text(fake_llm: FakeLLM) -> None:
    conversation = Conversation(history_with_images())
    compressor = Compressor(budget=ContextBudget(window=6000, threshold=0.5))
    async with ChatClient(make_config(fake_llm.base_url)) as model:
        before = compressor.budget.estimate_all(conversation.messages, [])
        assert compressor.budget.needs_compression(before)
        done = await compressor.fit(conversation, model, [])
    assert done is not None and done.method == "elided"
    assert fake_llm.chat_requests == []  # no summary was needed
    messages = conversation.messages
    assert [len(image_parts(m.get("content"))) for m in messages] == [0, 0, 0, 0, 0, 1]
    assert messages[1]["content"][1] == {"type": "text", "text": IMAGE_REMOVED}
    assert messages[1]["content"][0]["text"] == "first screenshot"
    assert done.after_tokens < before


async def test_the_summarizing_request_carries_no_images(fake_llm: FakeLLM) -> None:
    from tests.test_compression import SNAPSHOT

    fake_llm.script(text(SNAPSHOT))
    conversation = Conversation(history_with_images())
    compressor = Compressor(budget=ContextBudget(window=100_000), keep_fraction=0.2)
    async with ChatClient(make_config(fake_llm.base_url)) as model:
        done = await compressor.compress(conversation, model, [], reason="manual")
    assert done is not None and done.method == "summary"
    (request,) = fake_llm.chat_requests
    sent = json.dumps(request.body)
    assert "image_url" not in sent and IMAGE_REMOVED in sent


def test_repair_merges_user_messages_with_images_keeping_them() -> None:
    first, second = image_message((56, 56), "one"), image_message((56, 56), "two")
    conversation = Conversation([{"role": "system", "content": "s"}])
    conversation.reset([first, {"role": "user", "content": "plain"}, second])
    (merged,) = conversation.messages[1:]
    texts = [p["text"] for p in merged["content"] if p["type"] == "text"]
    assert texts == ["one", "plain", "two"]
    assert len(image_parts(merged["content"])) == 2


def test_a_saved_session_keeps_its_images(tmp_path: Path) -> None:
    messages = [image_message((56, 56), "see this"), {"role": "assistant", "content": "Seen."}]
    writer = SessionWriter(tmp_path / "s.jsonl", session_id="s", cwd=tmp_path, model=VISION)
    writer.sync(messages)
    loaded = load(tmp_path / "s.jsonl")
    assert loaded.messages == messages
    assert loaded.info.first_message == "see this"
    conversation = Conversation.with_system("s")
    conversation.reset(loaded.messages)
    assert conversation.messages[1:] == messages


# --- @image in a headless prompt --------------------------------------------------------------


async def headless(root: Path, prompt: str) -> tuple[int, str, str]:
    settings = load_settings(Flags(), cwd=root)
    out, err = io.StringIO(), io.StringIO()
    code = await run_headless(
        settings,
        resolve_provider(settings),
        prompt,
        output_format="text",
        cwd=root,
        out=out,
        err=err,
        home=qwen_home(),
    )
    return code, out.getvalue(), err.getvalue()


async def test_an_image_reference_in_a_headless_prompt_sends_the_image(
    tmp_path: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_MODEL", VISION)
    png(tmp_path / "shot.png", (100, 50))
    (tmp_path / "notes.txt").write_text("not attached headless\n")
    fake_llm.script(text("A red bar."))
    code, out, err = await headless(tmp_path, "What is in @shot.png? (see @notes.txt)")
    assert (code, out, err) == (0, "A red bar.\n", "")
    content = fake_llm.chat_requests[0].body["messages"][-1]["content"]  # type: ignore[index]
    assert content[0]["text"].startswith("What is in @shot.png? (see @notes.txt)")
    assert "[@shot.png: image (100x50" in content[0]["text"]
    assert "not attached headless" not in content[0]["text"]
    (part,) = image_parts(content)
    assert decoded(part).size == (100, 50)


async def test_a_text_only_model_gets_a_note_and_the_user_is_told(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    png(tmp_path / "shot.png")
    fake_llm.script(text("I cannot see it."))
    code, _, err = await headless(tmp_path, "What is in @shot.png?")
    assert code == 0
    assert "qwen3-coder-plus cannot see images" in err and "visionModel" in err
    content = fake_llm.chat_requests[0].body["messages"][-1]["content"]  # type: ignore[index]
    assert isinstance(content, str)
    assert "[@shot.png: an image the model cannot see; not attached]" in content
