"""Reading a file a user pointed at (models import, batch, cache-eval, datasets), safely.

Only regular files under a size cap are read (`/dev/zero`, a FIFO or a 40 GB log never are), in
chunks, so nothing is slurped before the cap is checked; a UTF-8 byte-order mark is accepted.
Every problem is one `InputFileError` naming the path and what is wrong with it.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from .errors import InferscaleError

DEFAULT_MAX_FILE_MB = 50.0
MAX_LINE_CHARS = 1_000_000  # one JSONL line; longer is not a prompt
MAX_JSON_DEPTH = 32  # nesting in one JSON line or YAML document; deeper is a hostile file
BOM = "\ufeff"
_CHUNK = 1 << 20


class InputFileError(InferscaleError):
    """A file given on the command line that cannot be read: missing, a directory, a special file,
    unreadable, too large, not UTF-8. The message names the path and the problem."""


def max_file_mb() -> float:
    """The size cap in MB (2**20 bytes): INFERSCALE_MAX_FILE_MB, default 50."""
    raw = os.environ.get("INFERSCALE_MAX_FILE_MB", "")
    try:
        mb = float(raw) if raw.strip() else DEFAULT_MAX_FILE_MB
    except ValueError:
        raise InputFileError(f"INFERSCALE_MAX_FILE_MB={raw!r} is not a number") from None
    if not mb > 0 or mb == float("inf"):
        raise InputFileError(f"INFERSCALE_MAX_FILE_MB={raw!r} must be a finite number > 0")
    return mb


def max_file_bytes() -> int:
    return int(max_file_mb() * 1024 * 1024)


def _over(p: Path, size: int | None = None) -> str:
    got = f"{size:,} bytes, " if size is not None else ""
    return f"{p}: {got}over the {max_file_mb():g} MB limit (INFERSCALE_MAX_FILE_MB)"


def check_file(path: str | Path, error: type[InferscaleError] = InputFileError) -> Path:
    """`path` if it is a readable regular file under the cap, else `error` (InputFileError, or
    the caller's own subclass of InferscaleError) saying why."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise error(f"{p}: no such file") from None
    except PermissionError:
        raise error(f"{p}: permission denied") from None
    except OSError as exc:
        raise error(f"{p}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{p}: is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{p}: not a regular file (a device, FIFO or socket)")
    cap = max_file_bytes()
    if st.st_size > cap:
        raise error(_over(p, st.st_size))
    if not os.access(p, os.R_OK):
        raise error(f"{p}: permission denied")
    return p


def read_bytes(path: str | Path, error: type[InferscaleError] = InputFileError) -> bytes:
    """The whole file, read in chunks and stopped at the cap (a file growing while read too)."""
    p = check_file(path, error)
    cap = max_file_bytes()
    parts, total = [], 0
    try:
        with p.open("rb") as f:
            while chunk := f.read(_CHUNK):
                total += len(chunk)
                if total > cap:
                    raise error(_over(p))
                parts.append(chunk)
    except PermissionError:
        raise error(f"{p}: permission denied") from None
    except IsADirectoryError:
        raise error(f"{p}: is a directory, not a file") from None
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise error(f"{p}: is a directory, not a file") from None
        raise error(f"{p}: cannot read ({exc.strerror or exc})") from None
    return b"".join(parts)


def read_text(path: str | Path, error: type[InferscaleError] = InputFileError) -> str:
    """The file as UTF-8 text (a leading BOM dropped)."""
    p = Path(path)
    data = read_bytes(p, error)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(f"{p}: not UTF-8 text (line {line})") from None
    return text.removeprefix(BOM)


def iter_lines(path: str | Path, error: type[InferscaleError] = InputFileError) -> Iterator[tuple[int, str]]:
    """(line number, text) for every line of a UTF-8 file (BOM dropped); names the bad line."""
    p = Path(path)
    data = read_bytes(p, error)
    for n, raw in enumerate(data.split(b"\n"), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise error(f"{p.name} line {n}: not UTF-8 text") from None
        if n == 1:
            text = text.removeprefix(BOM)
        if len(text) > MAX_LINE_CHARS:
            raise error(f"{p.name} line {n}: {len(text):,} characters, over the "
                                 f"{MAX_LINE_CHARS:,} a line may hold")
        yield n, text.removesuffix("\r")


def json_depth(value: object, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of a parsed JSON/YAML value, stopping once past `limit` (no deep recursion)."""
    depth, level, seen = 0, [value], set()
    while level and depth <= limit:
        nxt: list[object] = []
        for v in level:
            # YAML aliases share one object: visit each once (a "billion laughs" file stays linear).
            if isinstance(v, dict | list | tuple) and id(v) not in seen:
                seen.add(id(v))
                nxt += list(v.values()) if isinstance(v, dict) else list(v)
        level = [v for v in nxt if isinstance(v, dict | list | tuple)]
        depth += 1 if level else 0
    return depth


def text_problem(text: str) -> str | None:
    """Why a text field cannot be sent to a model: a NUL byte or a lone surrogate (JSON allows
    "\\ud800", UTF-8 cannot carry it), or None when it is fine."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode text)"
    return None
