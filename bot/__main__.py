"""`python -m bot ...` is the same as the `bangfu` command."""

from bot.cli import main

main()
