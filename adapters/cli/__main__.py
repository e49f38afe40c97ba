"""`python -m adapters.cli`: the `grievance` command."""

from adapters.cli.main import main

main()
