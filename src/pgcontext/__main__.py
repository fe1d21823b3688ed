"""`python -m pgcontext`: the `pgcontext` command."""

from pgcontext.cli import main

main()
