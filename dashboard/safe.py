"""Text from models and providers, made safe for Streamlit's Markdown.

Streamlit renders `st.markdown`, `st.error`, `st.caption`… as Markdown. Without
`unsafe_allow_html` raw HTML is not injected, but Markdown itself can still make the browser fetch
a URL chosen by whoever wrote the text (`![x](http://host/pixel.png)`: the classic way a
prompt-injected answer sends data out of a chat UI) or show a phishing link (`[Re-authenticate
here](http://host)`). So:

- `plain(text)` is for provider errors, model ids, notes: every character that can start a
  Markdown construct (link, image, autolink, code, emphasis, math, directive) is escaped, so the
  text is shown exactly as written.
- `answer(text)` is for model answers, which stay Markdown (lists, code, emphasis, tables): images
  become their alt text and URL as text, links show their target as text and are not clickable,
  reference definitions and autolinks are disarmed, so nothing is fetched and every target is
  visible. Code spans and blocks keep their content (at worst a stray backslash before `[`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_PLAIN = re.compile(r"([\\`*\[\]()!<>:$~@&#|{}])")  # not "_": intraword, it never emphasises
# What GFM would turn into a link: a scheme URL or a www. host, up to whitespace or a bracket.
_URL = re.compile(r"\b(?:(?:[Hh][Tt][Tt][Pp][Ss]?|[Ff][Tt][Pp])://|[Ww][Ww][Ww]\.)[^\s<>`{}$|]*[^\s<>`{}$|.,;:!?'\")\]]")
# An image or link: `![alt](target)` / `[text](target)`; the target may be <bracketed> and titled.
_INLINE = re.compile(r"(!?)\[((?:[^\[\]\\]|\\.){0,1000})\]\(\s*(<[^>\n]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"
                     r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
_REF_DEF = re.compile(r"^( {0,3}\[[^\]\n]+\]):", re.MULTILINE)
_AUTOLINK = re.compile(r"<(?=[^<>\s]*[:@][^<>\s]*>)")
_LINKISH = re.compile(r"<((?:[A-Za-z][A-Za-z0-9+.-]{1,31}:)[^<>\s]*)>|" + _URL.pattern)
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})([^`\n]*)$")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)[^\n]+?(?<!`)\1(?!`)")
_TEX = re.compile(r"\\(includegraphics|href|url)\b")


def plain(text: object) -> str:
    """Markdown that renders as `text`, on one line (errors, ids, short notes). URLs become code
    spans: Streamlit's GFM turns a URL in text into a link even when its characters are escaped
    (the match runs on the parsed text), and code is never linked."""
    s = " ".join(str("" if text is None else text).split())
    out, pos = [], 0
    for m in _URL.finditer(s):
        out += [_PLAIN.sub(r"\\\1", s[pos:m.start()]), _code(m.group(0))]
        pos = m.end()
    out.append(_PLAIN.sub(r"\\\1", s[pos:]))
    return "".join(out)


def answer_parts(text: str | None) -> list[tuple[str, str, str | None]]:
    """An answer split into ("code", source, language) fenced blocks, shown with `st.code` (exact
    text, never parsed), and ("markdown", safe_markdown, None) for the prose between them. A
    mistaken split is safe both ways: code taken for prose is disarmed, prose taken for code is
    shown as literal text."""
    parts: list[tuple[str, str, str | None]] = []
    prose: list[str] = []
    lines = (text or "").split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if m is None:
            prose.append(lines[i])
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).strip() or None
        end = next((j for j in range(i + 1, len(lines))
                    if lines[j].strip().startswith(fence[0] * len(fence))
                    and not lines[j].strip().strip(fence[0])), len(lines))
        if prose:
            parts.append(("markdown", answer("\n".join(prose)), None))
            prose = []
        parts.append(("code", "\n".join(lines[i + 1:end]), lang.split()[0] if lang else None))
        i = end + 1
    if prose:
        parts.append(("markdown", answer("\n".join(prose)), None))
    return [p for p in parts if p[1].strip() or p[0] == "code"]


def render_answer(text: str | None, suffix: str = "") -> None:
    """Show an answer in the current Streamlit container: prose as disarmed Markdown (no HTML,
    no images, link targets as text), fenced code with `st.code`."""
    import streamlit as st

    parts = answer_parts(text) or [("markdown", "", None)]
    for n, (kind, body, lang) in enumerate(parts):
        last = n == len(parts) - 1
        if kind == "code":
            st.code(body, language=lang)
            if last and suffix:
                st.markdown(suffix)
        else:
            st.markdown(body + (suffix if last else ""))  # never unsafe_allow_html


def answer(text: str | None) -> str:
    """Prose from a model as Markdown that loads nothing and hides no link target."""
    if not text:
        return ""

    def link(m: re.Match[str]) -> str:
        bang, label, target = m.group(1), m.group(2), m.group(3).strip("<>")
        shown = _code(target) if target else "(no URL)"
        if bang:
            return f"[image: {plain(label) or 'no description'}] {shown}"
        return f"{label} ({shown})" if label else shown

    # Readable first, outside inline code: images become "[image: alt] `url`", links "text (`url`)".
    text = _outside_spans(text, lambda part: _INLINE.sub(link, part))
    # Then the safety net over everything, code spans included (a mis-guessed span must never
    # carry an image through): any image or link opener left, reference definitions, autolinks,
    # and the TeX commands that fetch or link.
    text = text.replace("![", "!\\[").replace("](", "]\\(")
    text = _REF_DEF.sub(lambda m: m.group(1) + "\\:", text)
    text = _TEX.sub(r"\\\\\1", text)
    # Outside code spans: autolinks and bare URLs, which GFM turns into clickable anchors, shown as
    # code (escaping is not enough: GFM finds URLs in the parsed text); then any "<…:…>" left.
    return _outside_spans(text, _unlink)


def _code(target: str) -> str:
    return "`" + target.replace("`", "'") + "`"


def _unlink(part: str) -> str:
    part = _LINKISH.sub(lambda m: _code(m.group(1) or m.group(0)), part)
    return _AUTOLINK.sub(r"\\<", part)


def _outside_spans(text: str, fn: Callable[[str], str]) -> str:
    out, pos = [], 0
    for m in _CODE_SPAN.finditer(text):
        out.append(fn(text[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(fn(text[pos:]))
    return "".join(out)
