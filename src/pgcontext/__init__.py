"""pgcontext: PostgreSQL + pgvector as the memory of an LLM application.

>>> from pgcontext import Store
>>> with Store.open() as store:          # the embedded server, or PGCONTEXT_DATABASE_URL
...     store.ingest("notes", ["~/notes"])
...     result = store.context("What did we decide about X?", collection="notes")
...     result.messages                   # [{"role": "system", ...}, {"role": "user", ...}]

Everything a face (the `pgcontext` command, a server) needs is exported here, and a face
imports nothing else but `pgcontext.errors`. Besides the Store (`AsyncStore` for asyncio)
and its types (`CollectionInfo`: a collection's model and settings; `Answer`: a chat model's
answer with the context and citations it came from):

- `Settings`, `known_secrets`: the PGCONTEXT_* settings, and the secret values they hold.
- `redact_url`, `redact_secrets`, `RedactingFilter`: secrets out of printed and logged lines.
- `MAX_K`, `MAX_EF_SEARCH`, `BUDGET_RANGE`, `MAX_ANSWER_TOKENS`, `DEFAULT_*`, `MODES`,
  `RERANK_DEPTH`: the ranges and defaults of request parameters, for option checks and help.
- `check_query`, `check_paths`, `parse_filter_json`, `compile_filter`: a request's inputs
  checked before any model or database work (a face reports them as usage errors).
- `Progress`: the callable `Store.ingest` and `Store.worker` report progress to.
- `Worker`, `WorkerOptions`: a queue worker and its lease, backoff and stop rules;
  `fan_out`: several worker processes under one parent that passes stop signals on.
- `run_eval`, `EvalResult`, `EVAL_CONFIGURATIONS`: retrieval scored on a BEIR dataset;
  `read_answer_records`, `score_answers`, `AnswerReport`: answers scored against references.
- `pydoc_topics`: the Python language reference as documents (the demo's corpus).
- `stop_embedded`, `serves_url`: the embedded server stopped, or recognised by its URL.
"""

from pgcontext.aio import AsyncStore
from pgcontext.catalog import CollectionInfo, CollectionSettings
from pgcontext.config import Settings, known_secrets
from pgcontext.context.assemble import Citation, ContextResult, Passage
from pgcontext.context.template import SystemTemplate
from pgcontext.db.embedded import serves_url, stop_embedded
from pgcontext.embed.base import Embedder, ModelSpec
from pgcontext.errors import (
    BudgetError,
    CollectionExistsError,
    CollectionNotFoundError,
    ConfigError,
    DatabaseError,
    DatabaseUnavailableError,
    DatasetError,
    EmbeddedServerError,
    ExportError,
    FilterError,
    LlmError,
    ModelLoadError,
    ModelMismatchError,
    PgContextError,
    QueryError,
    SchemaError,
    SourceError,
    TemplateError,
)
from pgcontext.eval.answers import AnswerReport, score_answers
from pgcontext.eval.answers import read_records as read_answer_records
from pgcontext.eval.runner import ALL_CONFIGURATIONS as EVAL_CONFIGURATIONS
from pgcontext.eval.runner import EvalResult, run_eval
from pgcontext.ingest.fanout import fan_out
from pgcontext.ingest.report import IngestReport, Progress
from pgcontext.ingest.sources import (
    JsonlFields,
    SourceDocument,
    SourceProblem,
    check_paths,
    pydoc_topics,
)
from pgcontext.ingest.worker import Worker, WorkerOptions
from pgcontext.limits import (
    BUDGET_RANGE,
    DEFAULT_BACKOFF_SECONDS,
    DEFAULT_BUDGET_TOKENS,
    DEFAULT_CONTEXT_K,
    DEFAULT_EF_SEARCH,
    DEFAULT_HYBRID_EF_SEARCH,
    DEFAULT_JOB_DOCUMENTS,
    DEFAULT_K,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_TOKENS,
    MAX_ANSWER_TOKENS,
    MAX_EF_SEARCH,
    MAX_JOB_DOCUMENTS,
    MAX_K,
    check_query,
)
from pgcontext.llm.answer import Answer, AnswerStream, ChatModel
from pgcontext.llm.tokenizer import TokenCounter
from pgcontext.redact import RedactingFilter, redact_secrets, redact_url
from pgcontext.retrieve.filters import compile_filter, parse_filter_json
from pgcontext.retrieve.hit import Hit
from pgcontext.retrieve.hybrid import Fusion
from pgcontext.retrieve.options import DEFAULT_MODE, MODES, RERANK_DEPTH, SearchOptions
from pgcontext.retrieve.rerank import Reranker
from pgcontext.store import Store

__version__ = "0.1.0"

__all__ = [
    "BUDGET_RANGE",
    "DEFAULT_BACKOFF_SECONDS",
    "DEFAULT_BUDGET_TOKENS",
    "DEFAULT_CONTEXT_K",
    "DEFAULT_EF_SEARCH",
    "DEFAULT_HYBRID_EF_SEARCH",
    "DEFAULT_JOB_DOCUMENTS",
    "DEFAULT_K",
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODE",
    "EVAL_CONFIGURATIONS",
    "MAX_ANSWER_TOKENS",
    "MAX_EF_SEARCH",
    "MAX_JOB_DOCUMENTS",
    "MAX_K",
    "MODES",
    "RERANK_DEPTH",
    "Answer",
    "AnswerReport",
    "AnswerStream",
    "AsyncStore",
    "BudgetError",
    "ChatModel",
    "Citation",
    "CollectionExistsError",
    "CollectionInfo",
    "CollectionNotFoundError",
    "CollectionSettings",
    "ConfigError",
    "ContextResult",
    "DatabaseError",
    "DatabaseUnavailableError",
    "DatasetError",
    "EmbeddedServerError",
    "Embedder",
    "EvalResult",
    "ExportError",
    "FilterError",
    "Fusion",
    "Hit",
    "IngestReport",
    "JsonlFields",
    "LlmError",
    "ModelLoadError",
    "ModelMismatchError",
    "ModelSpec",
    "Passage",
    "PgContextError",
    "Progress",
    "QueryError",
    "RedactingFilter",
    "Reranker",
    "SchemaError",
    "SearchOptions",
    "Settings",
    "SourceDocument",
    "SourceError",
    "SourceProblem",
    "Store",
    "SystemTemplate",
    "TemplateError",
    "TokenCounter",
    "Worker",
    "WorkerOptions",
    "__version__",
    "check_paths",
    "check_query",
    "compile_filter",
    "fan_out",
    "known_secrets",
    "parse_filter_json",
    "pydoc_topics",
    "read_answer_records",
    "redact_secrets",
    "redact_url",
    "run_eval",
    "score_answers",
    "serves_url",
    "stop_embedded",
]
