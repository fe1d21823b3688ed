"""Arguments of the Python API that used to end in a traceback or be ignored: refused clearly."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields
from typing import Any

import psycopg
import pytest

from pgcontext import (
    CollectionSettings,
    ConfigError,
    FilterError,
    QueryError,
    SearchOptions,
    SourceDocument,
    Store,
    WorkerOptions,
)
from pgcontext.errors import CollectionExistsError
from pgcontext.ingest.sources import JsonlFields

NOT_UTF8 = "zebra\udcff"  # what Python makes of the argument $'zebra\xff' (surrogateescape)
DOCS = [SourceDocument("z", "Zebra", "The zebra has black and white stripes.", {})]


class _SilentChat:
    """A chat model that must never be asked: the bad prompt is refused before."""

    name = "silent"

    def stream(self, messages: Sequence[dict[str, str]], max_tokens: int) -> Iterator[str]:
        raise AssertionError("the chat model was called")


def _queued_jobs(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM pgcontext.ingest_queue").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_a_query_that_is_not_utf8_is_refused_naming_it(store: Store, mode: str) -> None:
    store.ingest("zoo", DOCS)
    bad_query = r"query 'zebra\\udcff' is not valid UTF-8 \(byte 0xff at character 5\)"
    with pytest.raises(ConfigError, match=bad_query):
        store.search(NOT_UTF8, collection="zoo", options=SearchOptions(mode=mode))
    with pytest.raises(ConfigError, match=bad_query):
        store.search(
            NOT_UTF8, collection="zoo", options=SearchOptions(mode=mode), vector=[1.0] * 16
        )
    bad_name = r"collection name 'zoo\\udcff' is not valid UTF-8 \(byte 0xff"
    with pytest.raises(ConfigError, match=bad_name):
        store.search("zebra", collection="zoo\udcff", options=SearchOptions(mode=mode))


def test_a_prompt_or_name_that_is_not_utf8_is_refused_in_every_entry_point(store: Store) -> None:
    store.ingest("zoo", DOCS)
    bad_prompt = r"prompt 'zebra\\udcff' is not valid UTF-8"
    with pytest.raises(ConfigError, match=bad_prompt):
        store.context(NOT_UTF8, collection="zoo")
    with pytest.raises(ConfigError, match=bad_prompt):
        store.ask(NOT_UTF8, collection="zoo", model=_SilentChat())
    with pytest.raises(ConfigError, match=r"instructions '\\ud800' is not valid UTF-8"):
        store.context("zebra", collection="zoo", instructions="\ud800")
    with pytest.raises(ConfigError, match=r"template '\$passages \\udcff' is not valid UTF-8"):
        store.context("zebra", collection="zoo", template="$passages \udcff")
    bad_name = r"collection name 'zoo\\udcff' is not valid UTF-8"
    for call in (
        lambda: store.context("zebra", collection="zoo\udcff"),
        lambda: store.ask("zebra", collection="zoo\udcff", model=_SilentChat()),
        lambda: store.search(
            "zebra", collection="zoo\udcff", options=SearchOptions(mode="keyword")
        ),
        lambda: store.search(
            "cat", collection="zoo\udcff", options=SearchOptions(mode="dense"), vector=[0.0] * 16
        ),
        lambda: store.collection("zoo\udcff"),
        lambda: store.retry_failed("zoo\udcff"),
        lambda: store.ingest("zoo\udcff", DOCS),
    ):
        with pytest.raises(ConfigError, match=bad_name):
            call()
    with pytest.raises(ConfigError, match="query 'a\\\\x00b' contains a NUL character"):
        store.search("a\x00b", collection="zoo", options=SearchOptions(mode="keyword"))


def test_a_collection_name_with_a_trailing_newline_is_refused(store: Store) -> None:
    message = r"collection name 'abc\\n' is invalid"
    with pytest.raises(ConfigError, match=message):
        store.create_collection("abc\n")
    with pytest.raises(ConfigError, match=message):
        store.ingest("abc\n", DOCS)
    assert store.collections() == []


def test_stdin_named_twice_is_refused_before_anything_is_created(store: Store) -> None:
    with pytest.raises(ConfigError, match=r"stdin \('-'\) is named 2 times"):
        store.ingest("zoo", ["-", "-"])
    assert store.collections() == []


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"max_bytes": 0}, "max_bytes"),
        ({"max_bytes": -5}, "max_bytes"),
        ({"job_documents": 0}, "job_documents"),
        ({"job_documents": 10**9}, "job_documents"),
    ],
)
def test_ingest_sizes_out_of_range_are_refused_before_anything_is_created(
    store: Store, arguments: dict[str, Any], parameter: str
) -> None:
    doc = SourceDocument("a", None, "some text", {})
    with pytest.raises(ConfigError, match=parameter) as raised:
        store.ingest("zoo", [doc], **arguments)
    assert raised.value.parameter == parameter
    assert store.collections() == []


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"lease_seconds": 0}, "lease_seconds"),
        ({"lease_seconds": -1}, "lease_seconds"),
        ({"backoff_seconds": float("nan")}, "backoff_seconds"),
        ({"poll_seconds": -1}, "poll_seconds"),
        ({"max_outage_seconds": -1}, "max_outage_seconds"),
    ],
)
def test_worker_options_out_of_range_are_refused(arguments: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError, match=parameter) as raised:
        WorkerOptions(**arguments)
    assert raised.value.parameter == parameter


def test_an_empty_path_is_refused_before_anything_is_created(store: Store) -> None:
    for given in ("", "   "):
        with pytest.raises(ConfigError, match="an empty path was given"):
            store.ingest("zoo", [given], prune=True)
    assert store.collections() == []


@pytest.mark.parametrize(
    ("given", "refusal"),
    [
        (CollectionSettings(chunk_tokens=40), r"chunk size \(chunk_tokens\) 24, not 40"),
        (CollectionSettings(chunk_overlap=3), r"chunk overlap \(chunk_overlap\) 0, not 3"),
        (
            CollectionSettings(text_search_config="german"),
            r"text search language \(text_search_config\) simple, not german",
        ),
        (CollectionSettings(vector_type="halfvec"), r"vector type \(vector_type\) vector"),
        (CollectionSettings(hnsw_m=8), r"HNSW m \(hnsw_m\) 16, not 8"),
        (
            CollectionSettings(hnsw_ef_construction=100),
            r"HNSW ef_construction \(hnsw_ef_construction\) 64, not 100",
        ),
    ],
)
def test_a_setting_an_existing_collection_would_ignore_is_refused(
    store: Store, db_url: str, given: CollectionSettings, refusal: str
) -> None:
    created = CollectionSettings(chunk_tokens=24, chunk_overlap=0, text_search_config="simple")
    store.ingest("zoo", DOCS, settings=created)
    jobs = _queued_jobs(db_url)
    changed = [SourceDocument("z", "Zebra", "Zebras live in herds.", {})]
    with pytest.raises(CollectionExistsError, match=refusal) as refused:
        store.ingest("zoo", changed, settings=given)
    # The error names the setting's field: the CLI maps it to its flag.
    assert refused.value.parameter == _given_field(given)
    with pytest.raises(CollectionExistsError, match=refusal):
        store.create_collection("zoo", settings=given)
    assert _queued_jobs(db_url) == jobs, "a refused ingest queues nothing"
    keyword_only = SearchOptions(mode="keyword")
    assert store.search("zebra", collection="zoo", k=1, options=keyword_only)[0].text.startswith(
        "The zebra"
    )


def test_settings_equal_to_the_collections_or_left_out_apply(store: Store) -> None:
    created = CollectionSettings(chunk_tokens=24, chunk_overlap=0, text_search_config="simple")
    store.ingest("zoo", DOCS, settings=created)
    changed = [SourceDocument("z", "Zebra", "Zebras live in herds.", {})]
    same = CollectionSettings(chunk_tokens=24, text_search_config="simple", vector_type="vector")
    assert store.ingest("zoo", changed, settings=same).updated == 1
    assert store.ingest("zoo", DOCS, settings=CollectionSettings()).updated == 1
    info = store.create_collection("zoo")  # nothing given: the existing collection as it is
    assert (info.chunk_tokens, info.chunk_overlap, info.text_search_config) == (24, 0, "simple")


def test_hnsw_settings_out_of_range_are_refused(store: Store) -> None:
    with pytest.raises(ConfigError, match="HNSW m 200 and ef_construction 64"):
        store.create_collection("zoo", settings=CollectionSettings(hnsw_m=200))
    assert store.collections() == []


@pytest.mark.parametrize(
    ("given", "refusal"),
    [
        ({"chunk_tokens": 0}, r"chunk size \(chunk_tokens\) must be between 8 and \d+, not 0"),
        ({"chunk_tokens": 40.5}, r"chunk size \(chunk_tokens\) must be an integer, not 40.5"),
        ({"chunk_tokens": "40"}, r"chunk size \(chunk_tokens\) must be an integer, not '40'"),
        ({"chunk_tokens": True}, r"chunk size \(chunk_tokens\) must be an integer, not True"),
        ({"chunk_overlap": -1}, r"chunk overlap \(chunk_overlap\) must be between 0"),
        ({"chunk_tokens": 16, "chunk_overlap": 8}, "chunk overlap 8 must be at least 0 and under"),
        ({"hnsw_m": 16.0}, r"HNSW m \(hnsw_m\) must be an integer, not 16.0"),
        ({"text_search_config": ""}, r"text search language \(text_search_config\) must be a name"),
        (
            {"text_search_config": " "},
            r"text search language \(text_search_config\) must be a name",
        ),
        ({"text_search_config": 5}, r"text search language \(text_search_config\) must be a name"),
        (
            {"text_search_config": NOT_UTF8},
            r"text search language \(text_search_config\) 'zebra\\udcff' is not valid UTF-8",
        ),
        ({"vector_type": "bit"}, r"vector type \(vector_type\) 'bit' is not one of"),
    ],
)
def test_a_setting_no_collection_could_have_is_refused_naming_it(
    given: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(ConfigError, match=refusal) as refused:
        CollectionSettings(**given)
    assert refused.value.parameter == list(given)[-1]


def _given_field(settings: CollectionSettings) -> str:
    (name,) = (f.name for f in fields(settings) if getattr(settings, f.name) is not None)
    return name


def test_the_same_settings_do_the_same_on_every_run(store: Store, db_url: str) -> None:
    unknown = CollectionSettings(text_search_config="klingon")
    for _ in range(2):
        with pytest.raises(
            ConfigError, match=r"\(text_search_config\) 'klingon' is unknown"
        ) as refused:
            store.ingest("zoo", DOCS, settings=unknown)
        assert refused.value.parameter == "text_search_config"
    assert store.collections() == [] and _queued_jobs(db_url) == 0
    for spelling in ("SIMPLE", "pg_catalog.simple", "simple"):
        settings = CollectionSettings(chunk_tokens=24, text_search_config=spelling)
        store.ingest("zoo", DOCS, settings=settings)  # the first creates, the others match
        assert store.create_collection("zoo", settings=settings).text_search_config == "simple"
    bad = CollectionSettings(text_search_config="simple'; DROP TABLE pgcontext.chunk; --")
    with pytest.raises(ConfigError, match="is unknown to this server"):
        store.ingest("zoo", DOCS, settings=bad)
    assert store.search("zebra", collection="zoo", k=1, options=SearchOptions(mode="keyword"))


def test_model_and_field_names_that_are_not_utf8_are_refused(store: Store) -> None:
    with pytest.raises(ConfigError, match=r"model 'zebra\\udcff' is not valid UTF-8"):
        store.ingest("zoo", DOCS, model=NOT_UTF8)
    for field in ("id", "title", "text"):
        with pytest.raises(ConfigError, match=rf"fields.{field} 'zebra\\udcff' is not valid"):
            JsonlFields(**{field: NOT_UTF8})
    assert store.collections() == []


ABSENT_TOKENIZER = "/nonexistent/pgcontext-tokenizer"  # loading it would fail


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"k": 0}, ConfigError, "k must be between 1 and 1000, not 0"),
        ({"budget_tokens": 5}, ConfigError, "budget_tokens must be between 16 and 1000000"),
        ({"order": "random"}, ConfigError, "passage order 'random' is not one of"),
        ({"filter": {"a": {"$bad": 1}}}, FilterError, "bad"),
        ({"prompt": "w " * 6000}, QueryError, "the query has 12,000 characters"),
        ({"collection": "bad name"}, ConfigError, "collection name 'bad name' is invalid"),
    ],
    ids=["k", "budget", "order", "filter", "long-prompt", "name"],
)
def test_context_checks_every_argument_before_loading_its_tokenizer(
    store: Store, arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    store.ingest("zoo", DOCS)
    call = {"prompt": "zebra", "collection": "zoo", "tokenizer": ABSENT_TOKENIZER, **arguments}
    with pytest.raises(error, match=message):
        store.context(call.pop("prompt"), collection=call.pop("collection"), **call)


class _CountingLocalChat:
    """Stands in for the bundled local model: counts the loads that should not happen."""

    loads = 0

    def __init__(self, models_dir: Any) -> None:
        type(self).loads += 1
        raise AssertionError("the local chat model was loaded")


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"k": 1001}, ConfigError, "k must be between 1 and 1000, not 1001"),
        ({"budget_tokens": 2**40}, ConfigError, "budget_tokens must be between 16 and"),
        ({"prompt": "w " * 6000}, QueryError, "the query has 12,000 characters"),
        ({"collection": "zoo\n"}, ConfigError, r"collection name 'zoo\\n' is invalid"),
        ({"tokenizer": ABSENT_TOKENIZER, "k": 0}, ConfigError, "k must be between"),
        ({"max_tokens": 0}, ConfigError, "max_tokens must be between 1 and 100000, not 0"),
    ],
    ids=["k", "budget", "long-prompt", "name", "tokenizer-and-k", "max-tokens"],
)
def test_ask_checks_every_argument_before_loading_the_local_model(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    arguments: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    import pgcontext.llm.local

    monkeypatch.setattr(pgcontext.llm.local, "LocalChat", _CountingLocalChat)
    monkeypatch.setattr(_CountingLocalChat, "loads", 0)
    store.ingest("zoo", DOCS)
    call = {"prompt": "zebra", "collection": "zoo", **arguments}
    with pytest.raises(error, match=message):
        store.ask(call.pop("prompt"), collection=call.pop("collection"), local=True, **call)
    assert _CountingLocalChat.loads == 0
