"""The command line: `python -m bot [serve|socket|work|migrate|check|usage|purge|budget]`."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from typing import NoReturn

from sqlalchemy.exc import SQLAlchemyError

from bot.budgets import cli as budget_cli
from bot.conversations import purge_cli
from bot.shell import migrations
from bot.shell.command_line import CommandError, error_line, sqlite_file_missing
from bot.shell.logs import configure_logging
from bot.shell.settings import Settings, SettingsError, not_set
from bot.tools.servers import CONNECT_TIMEOUT, ToolServers
from db.engine import failure_reason, make_engine, ping, safe_url


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command and return its exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        if args.command == "check":
            print(f"FAIL settings: {exc}")
            return 1
        return error_line(str(exc))
    configure_logging(settings)
    command: Callable[[Settings, argparse.Namespace], int] = COMMANDS[args.command or "auto"]
    try:
        return command(settings, args)
    except SettingsError as exc:
        return error_line(str(exc))
    except CommandError as exc:
        return error_line(str(exc), code=exc.code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard",
        description="Any OpenAI-compatible model in Slack threads, every token counted.",
        epilog="With no command: Socket Mode when SLACK_APP_TOKEN is set, HTTP otherwise.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve Slack's HTTP requests at /slack/events")
    serve.add_argument("--port", type=int, help="port to listen on (default: PORT, 3000)")
    serve.add_argument(
        "--accept-only",
        action="store_true",
        help="only store events and acknowledge them; `work` processes answer them",
    )
    commands.add_parser("work", help="only answer stored turns (beside `serve --accept-only`)")
    commands.add_parser("socket", help="connect to Slack in Socket Mode (needs SLACK_APP_TOKEN)")
    commands.add_parser("migrate", help="apply pending database migrations")
    commands.add_parser("check", help="check the settings and the database, one OK/FAIL line each")
    usage = commands.add_parser("usage", help="print a usage and cost report")
    period = usage.add_mutually_exclusive_group()
    period.add_argument("--days", type=int, help="the last N days (default 30)")
    period.add_argument("--since", metavar="DATE", help="first day, YYYY-MM-DD")
    usage.add_argument("--until", metavar="DATE", help="last day, YYYY-MM-DD (with --since)")
    usage.add_argument("--team", help="workspace (team) id; default: every workspace")
    usage.add_argument("--user", help="Slack user id")
    usage.add_argument("--model", help="model name")
    usage.add_argument("--format", choices=("table", "csv", "json"), default="table")
    usage.add_argument(
        "--rebuild-totals",
        action="store_true",
        help="instead of a report, recompute the running totals from every responses row",
    )
    purge = commands.add_parser(
        "purge", help="remove conversation content older than an age (accounting is kept)"
    )
    purge_cli.add_arguments(purge)
    budget = commands.add_parser(
        "budget", help="show or change a workspace's monthly limits (USD and tokens)"
    )
    budget_cli.add_arguments(budget)
    # `--older-than -5d` reads as an unknown option to argparse: say so in one line, exit 2.
    # argparse has no per-subparser error hook (add_parser takes no class), so the method is
    # replaced on this one parser, which mypy refuses unless told.
    purge.error = _one_line_error  # type: ignore[method-assign]
    return parser


def _one_line_error(message: str) -> NoReturn:
    raise SystemExit(error_line(f"purge: {message}"))


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    migrations.upgrade(settings.database_url)
    print(
        f"Database {safe_url(settings.database_url)} is at revision "
        f"{migrations.head_revision(settings.database_url)}."
    )
    return 0


def _check(settings: Settings, _args: argparse.Namespace) -> int:
    # One OK/FAIL line per item and nothing else: the libraries' log lines (httpx's requests,
    # slack_sdk's failed calls, alembic's context) would come between them.
    logging.disable(logging.CRITICAL)
    try:
        results = _check_results(settings)
    finally:
        logging.disable(logging.NOTSET)
    for name, problem in results:
        print(f"FAIL {name}: {problem}" if problem else f"OK   {name}")
    return 1 if any(problem for _, problem in results) else 0


def _check_results(settings: Settings) -> list[tuple[str, str | None]]:
    results: list[tuple[str, str | None]] = [("settings", None)]
    oauth = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "ENCRYPTION_KEY")
    for name in (*(oauth if settings.oauth else ("SLACK_BOT_TOKEN",)), "OPENAI_API_KEY"):
        results.append((name, None if getattr(settings, name.lower()) else not_set(name)))
    if not (settings.slack_signing_secret or settings.slack_app_token):
        results.append(
            (
                "SLACK_SIGNING_SECRET",
                "neither SLACK_SIGNING_SECRET (HTTP mode) nor SLACK_APP_TOKEN "
                "(Socket Mode) is set: set the one for the mode you run.",
            )
        )
    results.extend(_check_database(settings))
    results.extend(_check_endpoints(settings))
    results.extend(_check_tool_servers(settings))
    return results


def _check_tool_servers(settings: Settings) -> list[tuple[str, str | None]]:
    """One line per MCP server: up with its tool count, or down and why."""
    if not settings.mcp_servers:
        return []
    servers = ToolServers(settings.mcp_servers)
    servers.start()
    try:
        servers.wait_tried(CONNECT_TIMEOUT + 2)
        states = servers.states()
    finally:
        servers.close()
    results: list[tuple[str, str | None]] = []
    for state in states:
        name = f"MCP server {state.name} ({state.where})"
        if state.up:
            count = len(state.tools)
            results.append((f"{name}: {count} tool{'' if count == 1 else 's'}", None))
        else:
            results.append((name, state.problem or "it did not answer in time"))
    return results


def _check_database(settings: Settings) -> list[tuple[str, str | None]]:
    url = settings.database_url
    missing = sqlite_file_missing(url)
    if missing is not None:
        # Connecting would create an empty file; say what start-up or `migrate` will do instead.
        if settings.auto_migrate:
            return [
                (f"database: {missing} does not exist yet; created on start (AUTO_MIGRATE)", None)
            ]
        return [("database", f"{missing} does not exist: run `python -m bot migrate`.")]
    try:
        engine = make_engine(url)
    except (SQLAlchemyError, ImportError) as exc:
        return [("database", f"cannot use {safe_url(url)}: {exc}")]
    try:
        with engine.connect() as connection:
            ping(connection)
        current = migrations.current_revision(engine)
    except SQLAlchemyError as exc:
        reason = failure_reason(exc)
        return [("database", f"cannot connect to {safe_url(url)}: {reason}")]
    finally:
        engine.dispose()
    head = migrations.head_revision(url)
    if current == head:
        return [("database", None), ("migrations", None)]
    behind = f"database is at {current or 'no revision'}, newest is {head}"
    if settings.auto_migrate:
        return [
            ("database", None),
            (f"migrations: {behind}; applied on start (AUTO_MIGRATE)", None),
        ]
    return [("database", None), ("migrations", f"{behind}: run `python -m bot migrate`.")]


def _check_endpoints(settings: Settings) -> list[tuple[str, str | None]]:
    """Whether Slack takes the bot token, and whether the endpoint offers the configured models."""
    from bot.shell import preflight  # imports openai (~1 s): only commands that call out pay it

    results: list[tuple[str, str | None]] = []
    if settings.slack_bot_token:
        problem = preflight.slack_bot_token_problem(settings)
        explained = preflight.explain("SLACK_BOT_TOKEN", problem, settings) if problem else None
        results.append(("slack", explained))
    if settings.openai_api_key:
        try:
            offered = preflight.model_endpoint_models(settings)
        except RuntimeError as exc:
            results.append(("model endpoint", str(exc)))
        else:
            results.append((f"model endpoint: {len(offered)} models", None))
            results.append(_check_models(settings, offered))
    return results


def _check_models(settings: Settings, offered: list[str]) -> tuple[str, str | None]:
    """DEFAULT_MODEL and every ALLOWED_MODELS entry, held against what the endpoint lists."""
    configured = dict.fromkeys([settings.default_model, *(m for _, m in settings.allowed_models)])
    absent = [model for model in configured if model not in offered]
    if not absent:
        return (f"models: {', '.join(configured)}", None)
    listed = ", ".join(offered[:10]) + (", …" if len(offered) > 10 else "")
    return (
        "models",
        f"the endpoint does not offer {', '.join(absent)} (set in DEFAULT_MODEL or "
        f"ALLOWED_MODELS); it lists {listed or 'none'}.",
    )


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from bot.shell.server import serve_http

    return serve_http(settings, port=args.port, accept_only=getattr(args, "accept_only", False))


def _work(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.shell.server import work

    return work(settings)


def _socket(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.shell import preflight
    from bot.shell.server import serve_socket

    # Every missing setting at once, before Slack is asked about the app token.
    settings.require_slack_credentials("SLACK_APP_TOKEN", "OPENAI_API_KEY", socket_mode=True)
    preflight.require_app_token(settings)
    return serve_socket(settings)


def _auto(settings: Settings, args: argparse.Namespace) -> int:
    if settings.slack_app_token:
        return _socket(settings, args)
    args.port = None
    return _serve(settings, args)


def _purge(settings: Settings, args: argparse.Namespace) -> int:
    return purge_cli.run_purge(settings, args)


def _budget(settings: Settings, args: argparse.Namespace) -> int:
    return budget_cli.run_budget(settings, args)


def _usage(settings: Settings, args: argparse.Namespace) -> int:
    from bot.usage.cli import run_usage

    return run_usage(settings, args)


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": _serve,
    "socket": _socket,
    "work": _work,
    "migrate": _migrate,
    "check": _check,
    "usage": _usage,
    "purge": _purge,
    "budget": _budget,
    "auto": _auto,
}
