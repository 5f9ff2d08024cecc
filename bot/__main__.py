"""`python -m bot`."""

from bot.shell.cli import main

raise SystemExit(main())
