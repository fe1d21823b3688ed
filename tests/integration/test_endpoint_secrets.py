"""An endpoint that quotes the Authorization header back: the API key is still never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pgcontext import LlmError
from pgcontext.cli import main
from pgcontext.config import LlmSettings
from pgcontext.llm.client import ChatClient
from tests.support.fake_embedder import PLUGIN
from tests.support.openai_server import openai_server

KEY = "sk-live-Very5ecretKey"
MESSAGES = [{"role": "user", "content": "What is MVCC?"}]


@pytest.mark.parametrize("mode", ["echo_auth", "echo_auth_midstream"])
def test_an_echoed_key_is_hidden_in_the_error(mode: str) -> None:
    with openai_server() as (url, behaviour):
        behaviour.mode = mode
        client = ChatClient(LlmSettings(url=url, model="m", api_key=KEY))
        with pytest.raises(LlmError) as raised:
            "".join(client.stream(MESSAGES, 10))
    assert behaviour.requests[-1]["authorization"] == f"Bearer {KEY}"  # it was echoed
    assert "Bearer ***" in str(raised.value)
    assert KEY not in str(raised.value)


@pytest.mark.parametrize(
    "mode", ["echo_cut", "echo_not_json", "echo_not_object", "echo_lower_midstream"]
)
def test_a_key_cut_or_lowercased_by_the_error_text_is_hidden(mode: str) -> None:
    with openai_server() as (url, behaviour):
        behaviour.mode = mode
        client = ChatClient(LlmSettings(url=url, model="m", api_key=KEY))
        with pytest.raises(LlmError) as raised:
            "".join(client.stream(MESSAGES, 10))
    shown = str(raised.value).lower()
    assert "bearer ***" in shown
    for size in range(6, len(KEY) + 1):  # no start of the key, in any case
        assert KEY[:size].lower() not in shown


def test_ask_never_prints_the_key(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "mvcc.md").write_text("MVCC keeps old row versions for readers.", "utf-8")
    with openai_server() as (url, behaviour):
        env = {
            "PGCONTEXT_DATABASE_URL": db_url,
            "PGCONTEXT_HOME": str(tmp_path / "home"),
            "PGCONTEXT_MODEL": PLUGIN,
            "PGCONTEXT_LLM_URL": f"{url}/v1?api_key=sk-in-the-url",
            "PGCONTEXT_LLM_API_KEY": KEY,
        }
        runner = CliRunner()
        ingested = runner.invoke(main, ["ingest", str(tmp_path / "mvcc.md"), "-c", "kb"], env=env)
        assert ingested.exit_code == 0, ingested.output
        behaviour.mode = "echo_auth"
        result = runner.invoke(
            main, ["ask", "What is MVCC?", "-c", "kb", "--mode", "keyword"], env=env
        )
    assert result.exit_code == 1, result.output
    assert "HTTP 401: rejected Bearer ***" in result.output
    assert KEY not in result.output and "sk-in-the-url" not in result.output
