"""`init`, `db upgrade|url|stop` and `status`: the database and what it holds."""

from __future__ import annotations

import click

from pgcontext import Settings, redact_url, serves_url, stop_embedded
from pgcontext.cli.errors import fail, reported
from pgcontext.cli.options import json_option
from pgcontext.cli.render import print_json, print_status
from pgcontext.cli.session import open_store


@click.command()
@click.option("--collection", "-c", metavar="NAME", help="Also create this collection.")
@click.option("--model", metavar="MODEL", help="Embedding model for the collection.")
def init(collection: str | None, model: str | None) -> None:
    """Start the database (embedded by default), create or upgrade the schema.

    With --collection, also create an empty collection bound to the embedding model.
    """
    with open_store(upgrade=True) as store:
        click.echo(f"database ready: {redact_url(store.url)}")
        if collection:
            info = store.create_collection(collection, model=model)
            click.echo(f"collection {info.name!r} uses {info.model.describe()}")


@click.group()
def db() -> None:
    """Database schema and the embedded server."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the schema to this version and re-apply the SQL functions in sql/."""
    with open_store(upgrade=True) as store:
        click.echo(f"schema up to date: {redact_url(store.url)}")


@db.command("url")
def db_url() -> None:
    """Print the database URL (for psql: psql "$(pgcontext db url)")."""
    with open_store() as store:
        click.echo(store.url)


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded server (it otherwise keeps running between commands).

    With PGCONTEXT_DATABASE_URL set to another server, pgcontext does not use the embedded
    server and stops nothing: exit code 1 (set to the embedded server's own URL, it stops it).
    """
    with reported():
        settings = Settings.from_env()
        url = settings.database_url
        if url is not None and not serves_url(settings.home, url):
            raise fail(
                f"PGCONTEXT_DATABASE_URL is set ({redact_url(url)}): "
                "pgcontext does not run that server, so nothing was stopped; unset it to "
                "stop the embedded server"
            )
        stopped = stop_embedded(settings.home)
    click.echo("stopped" if stopped else f"no embedded server running in {settings.home}")


@click.command()
@json_option
def status(as_json: bool) -> None:
    """Collections with their model and size, and the ingest queue."""
    with open_store() as store:
        data = store.status()
        data["database"] = redact_url(store.url)
    if as_json:
        print_json(data)
    else:
        print_status(data)
