"""pgcontext: PostgreSQL + pgvector as the memory of an LLM application.

>>> from pgcontext import Store
>>> with Store.open() as store:          # the embedded server, or PGCONTEXT_DATABASE_URL
...     store.ingest("notes", ["~/notes"])
...     result = store.context("What did we decide about X?", "notes", budget_tokens=2000)
...     result.messages                   # [{"role": "system", ...}, {"role": "user", ...}]
"""

from pgcontext.aio import AsyncStore
from pgcontext.catalog import CollectionInfo, CollectionSettings
from pgcontext.context.assemble import Citation, ContextResult, Passage
from pgcontext.context.template import SystemTemplate
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
from pgcontext.ingest.report import IngestReport
from pgcontext.ingest.sources import JsonlFields, SourceDocument, SourceProblem
from pgcontext.llm.answer import Answer, AnswerStream, ChatModel
from pgcontext.llm.tokenizer import TokenCounter
from pgcontext.retrieve.hit import Hit
from pgcontext.retrieve.hybrid import Fusion
from pgcontext.retrieve.options import SearchOptions
from pgcontext.store import Store

__version__ = "0.1.0"

__all__ = [
    "Answer",
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
    "QueryError",
    "SchemaError",
    "SearchOptions",
    "SourceDocument",
    "SourceError",
    "SourceProblem",
    "Store",
    "SystemTemplate",
    "TemplateError",
    "TokenCounter",
    "__version__",
]
