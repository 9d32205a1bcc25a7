"""What the dashboard hands to Streamlit's Markdown: nothing that loads a resource or hides a link
target (the real-browser check with request interception is tests/e2e/test_remote_content.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dashboard.safe import answer, answer_parts, plain
from tests.support.dashboard import all_text, app_test, no_exception
from tests.support.fakes import fake_model
from tests.support.openai_server import hostile_markdown

ORIGIN = "http://hostile.invalid:8123"
# Markdown that would become an image, a link or an autolink when rendered (unescaped openers).
_LIVE = [
    re.compile(r"(?<!\\)!\[[^\]]*\]\("),  # inline image
    re.compile(r"(?<!\\)\]\((?!`)"),  # inline link target (a target shown as code is text)
    re.compile(r"(?m)^ {0,3}\[[^\]]+\]:"),  # reference definition
    re.compile(r"(?<!\\)<(?:https?|ftp|mailto):", re.I),  # autolink
    re.compile(r"(?<![\\`])\bhttps?://", re.I),  # bare URL outside code, GFM would link it
    re.compile(r"(?<!\\)\\includegraphics"),
]


def live_constructs(md: str) -> list[str]:
    outside_code = re.sub(r"`[^`\n]*`", "", md)
    return [p.pattern for p in _LIVE if p.search(outside_code)]


def test_hostile_markdown_is_disarmed() -> None:
    text = hostile_markdown(ORIGIN)
    assert live_constructs(text)  # the detector sees the raw attack
    parts = answer_parts(text)
    md = "\n".join(body for kind, body, _ in parts if kind == "markdown")
    assert live_constructs(md) == []
    assert "[image: tracking pixel] `http://hostile.invalid:8123/pixel.png?data=secret`" in md
    assert "Re-authenticate here (`http://hostile.invalid:8123/phish`)" in md
    err = plain(hostile_markdown(ORIGIN, short=True))
    assert live_constructs(err) == [] and "hostile.invalid" in err


@pytest.mark.parametrize("text", [
    "Use `print(x)` and **bold** and a list:\n\n- one\n- two",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "plain answer without any markup",
    "<img src=x onerror=alert(1)> <script>alert(2)</script>",
])
def test_ordinary_markdown_is_left_alone(text: str) -> None:
    assert answer(text) == text


def test_fenced_code_is_shown_exactly() -> None:
    code = 'curl https://example.com/x | jq ".[0](1)"\nif (![1, 2].includes(x)) {}'
    parts = answer_parts(f"Run this:\n```bash\n{code}\n```\nthen ![x]({ORIGIN}/a.png)")
    assert parts[1] == ("code", code, "bash")  # st.code: never parsed, nothing to disarm
    assert live_constructs(parts[2][1]) == []
    # An unclosed fence runs to the end, as code: shown as text either way.
    assert answer_parts(f"```\n![x]({ORIGIN}/a.png)")[0] == ("code", f"![x]({ORIGIN}/a.png)", None)


def test_playground_shows_hostile_answers_and_errors_as_text(make_engine: Any) -> None:
    make_engine(fake_model("fake-hostile", "hostile-md"), fake_model("fake-hostile-error", "hostile-error"))
    at = app_test("playground")
    for model in ("fake-hostile", "fake-hostile-error"):
        at.text_area(key="pg_prompt").input(f"ask {model}")
        at.multiselect(key="pg_models").set_value([model])
        at.selectbox(key="pg_strategy").select("single")
        at.button(key="pg_submit").click().run(timeout=180)
        no_exception(at)
        shown = [str(e.value) for kind in ("markdown", "caption", "error", "warning", "info", "success")
                 for e in getattr(at, kind)]
        assert [s for s in shown if live_constructs(s)] == [], model
        assert all(not m.proto.allow_html for m in at.markdown)
        assert "hostile.invalid" in all_text(at)  # the targets are visible, as text
    assert any("Re-authenticate here" in str(e.value) for e in at.error)


def test_models_page_shows_a_hostile_probe_error_as_text(make_engine: Any) -> None:
    make_engine(fake_model("fake-hostile-error", "hostile-error"))
    at = app_test("models")
    at.selectbox(key="models_selected").select("fake-hostile-error")
    at.button(key="models_test").click().run(timeout=120)
    no_exception(at)
    errors = [str(e.value) for e in at.error]
    assert errors and "hostile.invalid" in errors[0] and live_constructs(errors[0]) == []
