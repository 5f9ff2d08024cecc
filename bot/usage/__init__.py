"""Usage: reports of requests, tokens and cost, the /usage request language, and the CLI."""
