"""The `pgcontext` command: parses arguments, calls the public API, prints. Nothing imports it.

One module a group of commands (`database`, `ingest`, `retrieve`, `evaluate`, `demo`), and
what they share: `options`, `errors` (API parameters shown as flags), `session` (the store),
`render`, `progress` and `signals`. Every module imports only `pgcontext` (the public API),
`pgcontext.errors` and its siblings here (tests/cli/test_imports.py holds it to that).
"""

from __future__ import annotations

from pgcontext.cli.app import main
from pgcontext.cli.database import db, init, status
from pgcontext.cli.demo import demo
from pgcontext.cli.evaluate import eval_, eval_answers
from pgcontext.cli.ingest import export, ingest, retry, worker
from pgcontext.cli.retrieve import ask, context, search

for _command in (init, db, status, ingest, worker, retry, export, search, context, ask):
    main.add_command(_command)
for _command in (eval_, eval_answers, demo):
    main.add_command(_command)

__all__ = ["main"]
