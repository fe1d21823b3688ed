"""`python -m pgcontext.cli`: the command, as the worker fan-out starts it."""

from pgcontext.cli import main

main()
