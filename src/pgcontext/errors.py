"""One exception tree. Every message names the input that caused it and what to do."""

from __future__ import annotations


class PgContextError(Exception):
    """Base class of every error pgcontext raises on purpose.

    `parameter` names the API parameter at fault (`filter`, `k`, `prune`...) when one is:
    messages speak of the API's parameters, and the CLI maps them to its flags.
    """

    def __init__(self, *args: object, parameter: str | None = None) -> None:
        super().__init__(*args)
        self.parameter = parameter


class ConfigError(PgContextError):
    """A PGCONTEXT_* setting or an option has an invalid value."""


class DatabaseError(PgContextError):
    """The database could not be reached or refused an operation."""


class DatabaseUnavailableError(DatabaseError):
    """The database stayed unreachable longer than the run may wait (PGCONTEXT_DB_WAIT_SECONDS)."""


class EmbeddedServerError(DatabaseError):
    """The embedded PostgreSQL server could not be started."""


class SchemaError(DatabaseError):
    """The database schema is missing or older than this version of pgcontext."""


class CollectionNotFoundError(PgContextError):
    """No collection has the given name."""


class CollectionExistsError(PgContextError):
    """A collection with the given name exists already with other settings."""


class ModelMismatchError(PgContextError):
    """An embedding model other than the collection's own was used."""


class ModelLoadError(PgContextError):
    """An embedding model could not be loaded from its path or name."""


class FilterError(PgContextError):
    """A metadata filter is malformed: unknown operator, bad key or bad value."""


class SourceError(PgContextError):
    """An input document could not be read or parsed."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class ExportError(PgContextError):
    """A collection could not be exported: a value it holds, or the output, failed."""


class DatasetError(PgContextError):
    """An evaluation dataset directory is missing files or malformed."""


class BudgetError(PgContextError):
    """A token budget is too small for the prompt."""


class LlmError(PgContextError):
    """The chat endpoint or the local model failed: unreachable, refused, or malformed."""


class TemplateError(PgContextError):
    """A context template is malformed or lacks a placeholder it needs."""


class QueryError(PgContextError):
    """A search query cannot be run: too long, or its vector is zero or not finite."""


class ChangedWhilePreparedError(PgContextError):
    """Documents a worker prepared as unchanged were changed by another writer before this
    one wrote them: the batch's transaction is rolled back, those documents alone are
    prepared again, and the batch is written anew."""

    def __init__(self, sources: list[str]) -> None:
        super().__init__(f"{', '.join(sources)} changed while this job was being prepared")
        self.sources = sources
