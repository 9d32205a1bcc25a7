"""The input matrix: every file the CLI reads is a regular file under a size cap, read without
slurping; every problem is one line naming the path and the problem, exit 2, nothing stored lost."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from inferscale.batch import BatchFileError, read_jsonl
from inferscale.cache.evaluate import load_pairs
from inferscale.errors import ConfigError, InferscaleError
from inferscale.inputs import InputFileError, read_text
from tests.support.fakes import assert_one_line_error, fake_model, write_registry

GOOD_YAML = "models:\n  - {id: new-good, model: openai/echo, enabled: false}\n"


def test_special_files_directories_and_missing_files_are_named(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    cases = {"/dev/zero": "not a regular file", str(tmp_path): "is a directory", str(fifo): "not a regular file",
             str(tmp_path / "nope"): "no such file"}
    for path, problem in cases.items():
        for reader, kind in ((read_text, InputFileError), (read_jsonl, BatchFileError), (load_pairs, InferscaleError)):
            with pytest.raises(kind) as err:
                reader(path)
            assert problem in str(err.value) and path in str(err.value), (reader, str(err.value))


def test_size_cap_is_configurable_and_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"prompt": "x" * 1000}) + "\n" * 1200, encoding="utf-8")
    assert len(read_jsonl(big)) == 1
    monkeypatch.setenv("INFERSCALE_MAX_FILE_MB", "0.001")  # ~1 kB
    with pytest.raises(BatchFileError, match=r"big.jsonl: .* over the 0.001 MB limit \(INFERSCALE_MAX_FILE_MB\)"):
        read_jsonl(big)
    monkeypatch.setenv("INFERSCALE_MAX_FILE_MB", "nan")
    with pytest.raises(InputFileError, match="INFERSCALE_MAX_FILE_MB"):
        read_jsonl(big)


def test_a_utf8_bom_is_accepted(tmp_path: Path, engine_registry: Any) -> None:
    batch = tmp_path / "bom.jsonl"
    batch.write_bytes(b"\xef\xbb\xbf" + b'{"prompt": "with a byte-order mark"}\n')
    assert read_jsonl(batch)[0].prompt == "with a byte-order mark"
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_bytes(b"\xef\xbb\xbf" + b'{"a": "one", "b": "two", "same": false}\n')
    assert len(load_pairs(pairs)) == 1
    yml = tmp_path / "bom.yaml"
    yml.write_bytes(b"\xef\xbb\xbf" + GOOD_YAML.encode())
    assert [s.id for s in engine_registry.import_yaml(yml)] == ["new-good"]


@pytest.fixture
def engine_registry(make_engine: Any) -> Any:
    return make_engine().registry


@pytest.mark.parametrize(("line", "problem"), [
    ('{"prompt": "a\\u0000b"}', '"prompt" contains a NUL character'),
    ('{"prompt": "lone \\ud800 surrogate"}', '"prompt" contains a lone surrogate'),
    ('{"prompt": "ok", "system": "sys\\udfff"}', '"system" contains a lone surrogate'),
    ('{"prompt": "ok", "id": "a\\u0000"}', '"id" contains a NUL character'),
    ('{"prompt": "ok", "expected": "\\ud83d"}', '"expected" contains a lone surrogate'),
    ('{"prompt": ' + "[" * 50 + "]" * 50 + "}", "nested too deeply"),
    ('{"prompt": ' + "[" * 100000 + "]" * 100000 + "}", "nested too deeply"),
])
def test_batch_lines_are_validated_upfront(tmp_path: Path, line: str, problem: str) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text('{"prompt": "fine"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(BatchFileError) as err:
        read_jsonl(f)
    assert "line 2" in str(err.value) and problem in str(err.value), str(err.value)


def test_duplicate_batch_ids_are_refused_with_their_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "dup.jsonl"
    f.write_text('{"id": "a", "prompt": "one"}\n{"id": "b", "prompt": "two"}\n\n{"id": "a", "prompt": "three"}\n',
                 encoding="utf-8")
    with pytest.raises(BatchFileError, match=r"line 4: duplicate id 'a' \(first on line 1\)"):
        read_jsonl(f)


def test_deep_yaml_and_alias_bombs_are_refused(tmp_path: Path, engine_registry: Any) -> None:
    before = [s.id for s in engine_registry.list()]
    deep = tmp_path / "deep.yaml"
    deep.write_text("models:\n  - {id: x, model: openai/echo, tags: " + "[" * 60 + "]" * 60 + "}\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        engine_registry.import_yaml(deep)
    # A "billion laughs" of aliases: 9**40 strings if anything expanded it. Refused at once.
    bomb = tmp_path / "bomb.yaml"
    lines = ["models:", "  - id: b", "    model: openai/echo", "    enabled: false",
             "    tags: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"    notes{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 40)]
    bomb.write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="unknown field"):
        engine_registry.import_yaml(bomb)
    assert time.perf_counter() - t0 < 5
    assert [s.id for s in engine_registry.list()] == before


def test_cli_file_errors_are_one_line_exit_2(cli: Any, tmp_path: Path, make_engine: Any) -> None:
    engine = make_engine(fake_model("fake-echo"))
    engine.ask("kept request", models=["fake-echo"])
    for args, problem in [
        (["models", "import", "/dev/zero"], "/dev/zero: not a regular file"),
        (["models", "import", str(tmp_path)], "is a directory"),
        (["batch", "/dev/zero"], "/dev/zero: not a regular file"),
        (["cache-eval", "--pairs", str(tmp_path)], "is a directory"),
    ]:
        proc = cli(*args)
        line = assert_one_line_error(proc)
        assert proc.returncode == 2 and problem in line, line
    assert engine.monitor.stats()["requests_ok"] == 1  # nothing stored was lost


def test_a_corrupt_database_error_names_the_path(cli: Any, home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    db = home / "inferscale.db"
    db.write_bytes(b"this is not sqlite at all" * 100)
    line = assert_one_line_error(cli("stats"))
    assert str(db) in line and "not a database" in line, line
    with pytest.raises(sqlite3.DatabaseError):  # the file was left as it was, for the user to inspect
        sqlite3.connect(db).execute("SELECT 1 FROM sqlite_master").fetchall()


def test_prompts_are_capped_at_the_edges(make_engine: Any, tmp_path: Path) -> None:
    from inferscale.errors import InvalidPromptError
    from inferscale.limits import MAX_PROMPT_CHARS

    engine = make_engine(fake_model("fake-echo"))
    with pytest.raises(InvalidPromptError, match="over the 1,000,000 limit"):
        engine.ask("x" * (MAX_PROMPT_CHARS + 1), models=["fake-echo"])
    with pytest.raises(InvalidPromptError, match="system and history included"):
        engine.ask("short", system="s" * MAX_PROMPT_CHARS, models=["fake-echo"])
    f = tmp_path / "long.jsonl"
    f.write_text(json.dumps({"prompt": "y" * (MAX_PROMPT_CHARS + 1)}) + "\n", encoding="utf-8")
    with pytest.raises(BatchFileError, match="line 1"):
        read_jsonl(f)


def test_import_file_cap(tmp_path: Path, engine_registry: Any, monkeypatch: pytest.MonkeyPatch,
                         server: Any) -> None:
    path = write_registry(tmp_path / "m.yaml", [fake_model("capped", enabled=False, notes="n" * 3000)],
                          server.base_url)
    monkeypatch.setenv("INFERSCALE_MAX_FILE_MB", "0.001")
    with pytest.raises(ConfigError, match="over the 0.001 MB limit"):
        engine_registry.import_yaml(path)
