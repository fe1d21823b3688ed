"""The `pgcontext` command given inputs that used to crash it, hang it, or be ignored.

Inputs that could hang the process (a FIFO) or need a closed stdin run the command as a
subprocess with a timeout; the rest use click's CliRunner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.model

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "zebra.txt").write_text("The zebra has black and white stripes.", encoding="utf-8")
    return folder


def _subprocess(
    env: dict[str, str], *args: str, stdin: Any = subprocess.DEVNULL, shell_suffix: str = ""
) -> subprocess.CompletedProcess[str]:
    """`pgcontext ARGS` in its own process, killed (and the test failed) after 120 s."""
    full_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(SRC), str(SRC.parent)])}
    command = [sys.executable, "-m", "pgcontext.cli", *args]
    if shell_suffix:  # e.g. "<&-": run through sh for its redirection
        command = ["sh", "-c", 'exec "$@" ' + shell_suffix, "sh", *command]
    try:
        return subprocess.run(
            command, env=full_env, stdin=stdin, capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"pgcontext {' '.join(args)} hung")


def test_links_and_special_files_are_reported_and_the_rest_goes_on(
    env: dict[str, str], docs: Path, tmp_path: Path
) -> None:
    (docs / "loop.txt").symlink_to("loop.txt")
    (docs / "gone.md").symlink_to("missing.md")
    os.mkfifo(docs / "pipe.txt")
    outside = tmp_path / "named-pipe"
    os.mkfifo(outside)
    result = _subprocess(
        env, "ingest", str(docs), str(docs / "loop.txt"), str(outside), "-c", "kb", "--json"
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == 1
    reasons = sorted((Path(p["source"]).name, p["reason"][:30]) for p in report["problems"])
    assert reasons == [
        ("gone.md", "dangling symlink -> missing.md"),
        ("loop.txt", "symlink loop: the link leads b"),
        ("loop.txt", "symlink loop: the link leads b"),
        ("named-pipe", "not a regular file (FIFO); to "),
        ("pipe.txt", "not a regular file (FIFO); to "),
    ]


def test_closed_stdin_is_a_clear_error(env: dict[str, str]) -> None:
    result = _subprocess(env, "ingest", "-", "-c", "kb", shell_suffix="<&-")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "failed: stdin: standard input is closed" in result.stderr


def test_empty_stdin_is_an_input_problem_and_nothing_is_queued(env: dict[str, str]) -> None:
    result = _subprocess(env, "ingest", "-", "-c", "kb", "--json")  # stdin is /dev/null
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["problems"] == [{"source": "stdin", "reason": "empty input, nothing to index"}]
    assert report["queued_jobs"] == 0
    assert "pgcontext worker" not in result.stdout + result.stderr


def test_stdin_named_twice_is_a_usage_error(run: Any) -> None:
    result = run("ingest", "-", "-", "-c", "s", input="zebra twice")
    assert result.exit_code == 2
    assert "stdin ('-') is named 2 times" in result.output
    assert "no collections yet" in run("status").output  # nothing was created


def test_an_empty_path_is_a_usage_error_and_nothing_is_pruned(
    run: Any, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("ingest", str(docs), "-c", "kb").exit_code == 0
    monkeypatch.chdir(tmp_path)  # "" used to mean this folder
    (tmp_path / "here.txt").write_text("Not meant to be ingested.", encoding="utf-8")
    for given in ("", " "):
        result = run("ingest", given, "-c", "kb", "--prune")
        assert result.exit_code == 2, result.output
        assert "an empty path was given" in result.output
    kept = run("search", "zebra", "-c", "kb", "--mode", "keyword", "--json")
    assert "zebra.txt" in kept.output, "the collection was pruned"
    unread = run("search", "ingested", "-c", "kb", "--mode", "keyword", "--json")
    assert "here.txt" not in unread.output, "the current folder was ingested"


def test_arguments_that_are_not_utf8_are_one_clear_line(run: Any, docs: Path) -> None:
    assert run("ingest", str(docs), "-c", "kb").exit_code == 0
    bad = "zebra\udcff"  # what Python makes of the argument $'zebra\xff'
    for command in ("search", "context", "ask"):
        for mode in ("dense", "keyword", "hybrid"):
            result = run(command, bad, "-c", "kb", "--mode", mode)
            assert result.exit_code == 1, result.output
            argument = "query" if command == "search" else "prompt"
            assert f"{argument} 'zebra\\udcff' is not valid UTF-8 (byte 0xff" in result.output
        named = run(command, "zebra", "-c", "kb\udcff")
        assert named.exit_code == 1
        assert "collection name 'kb\\udcff' is not valid UTF-8" in named.output
    templated = run("context", "zebra", "-c", "kb", "--template-text", "$passages \udcff")
    assert templated.exit_code == 1
    assert "template '$passages \\udcff' is not valid UTF-8" in templated.output
    ingested = run("ingest", str(docs), "-c", "kb\udcff")
    assert ingested.exit_code == 1 and "collection name 'kb\\udcff'" in ingested.output


def test_collection_name_with_a_trailing_newline_is_refused(run: Any, docs: Path) -> None:
    result = run("ingest", str(docs), "-c", "abc\n")
    assert result.exit_code == 1
    assert "collection name 'abc\\n' is invalid" in result.output
    assert "Traceback" not in result.output and "CHECK" not in result.output


def test_collection_settings_that_would_be_ignored_are_refused(run: Any, docs: Path) -> None:
    created = run("ingest", str(docs), "-c", "kb", "--chunk-tokens", "64", "--language", "simple")
    assert created.exit_code == 0, created.output
    (docs / "zebra.txt").write_text("Zebras live in herds.", encoding="utf-8")
    refused = run("ingest", str(docs), "-c", "kb", "--chunk-tokens", "128", "--json")
    assert refused.exit_code == 1
    assert "exists with chunk size (--chunk-tokens) 64, not 128" in refused.output
    other_language = run("ingest", str(docs), "-c", "kb", "--language", "english")
    assert other_language.exit_code == 1
    assert "text search language (--language) simple, not english" in other_language.output
    same = run("ingest", str(docs), "-c", "kb", "--chunk-tokens", "64", "--json")
    assert same.exit_code == 0, same.output
    assert json.loads(same.output)["updated"] == 1  # the refused runs changed nothing


def test_a_setting_is_refused_the_same_way_on_every_run(run: Any, docs: Path) -> None:
    for option, value, refusal in (
        ("--chunk-tokens", "0", "chunk size (--chunk-tokens) must be between 8"),
        ("--overlap", "-1", "chunk overlap (--overlap) must be between 0"),
        ("--language", "", "text search language (--language) must be a name"),
        ("--language", "zebra\udcff", "(--language) 'zebra\\udcff' is not valid UTF-8"),
        ("--language", "klingon", "(--language) 'klingon' is unknown to this server"),
        ("--model", "zebra\udcff", "model 'zebra\\udcff' is not valid UTF-8"),
        ("--id-field", "zebra\udcff", "--id-field 'zebra\\udcff' is not valid UTF-8"),
        ("--text-field", "zebra\udcff", "--text-field 'zebra\\udcff' is not valid UTF-8"),
    ):
        for _ in range(2):
            result = run("ingest", str(docs), "-c", "kb", option, value)
            assert result.exit_code == 1, (option, result.output)
            assert refusal in result.output
            assert "Traceback" not in result.output
    assert "no collections yet" in run("status").output
