"""Helpers for registering fake remote models (served by `FakeOpenAIServer`) through the real registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

LOCAL_IDS = ("local/smollm2-135m-instruct", "local/gemma-3-270m")
KEY_VAR = "FAKE_KEY"


def fake_model(model_id: str, behaviour: str = "echo", **fields: Any) -> dict[str, Any]:
    """A registry entry for a fake remote model; `behaviour` is the fake server's model name
    (echo, slow-<ms>, fail-<code>, flaky-<n>, malformed, empty, hang, const-<word>).
    `api_base` is filled in with the server's URL when the entry is imported."""
    return {"id": model_id, "model": f"openai/{behaviour}", "api_key_env": KEY_VAR, **fields}


def write_registry(path: Path, entries: list[dict[str, Any]], base_url: str) -> Path:
    models = [{"api_base": base_url, **e} for e in entries]
    path.write_text(yaml.safe_dump({"models": models}, sort_keys=False), encoding="utf-8")
    return path


def run_cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the real `inferscale` command line in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "inferscale", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The CLI contract for bad input: non-zero exit, exactly one stderr line `error: …`, no traceback."""
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:"), proc.stderr
    return lines[0]
