"""Settings: one object, read once from the environment and a `.env` file, then passed down."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import overload
from urllib.parse import urlsplit

from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.installs.crypto import is_key
from bot.tools.config import ServerEntry, ToolConfigError, load_servers

# What Slack draws of Markdown (bot/slack/markdown.py makes headings bold lines and tables
# real tables), said to the model so that it writes what reads well there.
DEFAULT_SYSTEM_PROMPT = (
    "You are Switchboard, a helpful assistant in a Slack workspace. Answer clearly and concisely. "
    "Format with Markdown where it helps: bold, italics, lists, links, inline code and fenced code "
    "blocks show as written; a heading shows as a bold line; a table shows as a table (keep it to "
    "a few columns). Several people may talk in one thread; each of their messages starts with "
    "their name."
)
_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
MAX_RETENTION_DAYS = 36_500
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Slack shows at most four suggested prompts (assistant.threads.setSuggestedPrompts).
MAX_SUGGESTED_PROMPTS = 4


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and what to put there."""


@dataclass(frozen=True)
class Settings:
    """Everything Switchboard reads from its environment."""

    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    # Installing into many workspaces (Bolt's OAuth flow): the app's credentials, and the
    # Fernet keys installed tokens are encrypted with (the first encrypts, all decrypt).
    slack_client_id: str | None = None
    slack_client_secret: str | None = field(default=None, repr=False)
    encryption_key: tuple[str, ...] = field(default=(), repr=False)
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    database_url: str = field(default="sqlite:///switchboard.db", repr=False)
    default_model: str = "gpt-4o-mini"
    # Alias -> model, in the order given; a bare name is its own alias.
    allowed_models: tuple[tuple[str, str], ...] = ()
    admin_user_ids: frozenset[str] = frozenset()
    port: int = 3000
    # Port of GET /metrics in Socket Mode (in HTTP mode it is served on `port`); 0: none.
    metrics_port: int = 9464
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    log_level: str = "INFO"
    # Whether logs may hold message text and request bodies (the libraries' DEBUG output).
    log_content: bool = False
    max_context_tokens: int = 16_000
    # Bytes of one shared file the bot downloads at most (larger ones are named, not read).
    max_file_bytes: int = 20_000_000
    # A turn waiting on the model holds a thread and about 0.2 MB, no database connection: a
    # burst of several hundred streamed answers starts at once (README, "Bursts, concurrency").
    max_concurrent_turns: int = 500
    http_threads: int = 16
    # Seconds any one database statement (or connection attempt) may take before it fails.
    database_timeout: float = 10.0
    # Deprecated: MODEL_TIMEOUT, now the default of the first-token and idle timeouts below.
    model_timeout: float = 120.0
    model_first_token_timeout: float = 60.0
    model_idle_timeout: float = 60.0
    model_total_timeout: float = 300.0
    model_max_retries: int = 1
    model_provider: str | None = None
    # (model, USD per million input tokens, USD per million output tokens), as configured.
    model_prices: tuple[tuple[str, Decimal, Decimal], ...] = ()
    auto_migrate: bool = True
    shutdown_grace_seconds: float = 20.0
    turn_lease_seconds: float = 30.0
    turn_poll_seconds: float = 2.0
    max_turn_age_seconds: float = 600.0
    # (title, message) pairs shown when someone opens the bot's Messages tab; empty: defaults.
    suggested_prompts: tuple[tuple[str, str], ...] = ()
    # Days conversation content is kept; None keeps it forever.
    retention_days: int | None = None
    # MCP servers whose tools the model may call (the MCP_SERVERS file, `${VAR}`s expanded).
    mcp_servers: tuple[ServerEntry, ...] = field(default=(), repr=False)
    max_tool_calls: int = 8
    mcp_tool_timeout: float = 30.0

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
    ) -> Settings:
        """Build settings from `environ` (default: `os.environ`) over the values in `env_file`."""
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        env = _Env(values)
        return cls(
            slack_bot_token=env.token("SLACK_BOT_TOKEN", "xoxb-", "the bot token (xoxb-…)"),
            slack_signing_secret=env.string("SLACK_SIGNING_SECRET"),
            slack_app_token=env.token("SLACK_APP_TOKEN", "xapp-", "an app-level token (xapp-…)"),
            slack_api_url=env.url("SLACK_API_URL", cls.slack_api_url, trailing_slash=True),
            slack_client_id=env.string("SLACK_CLIENT_ID"),
            slack_client_secret=env.string("SLACK_CLIENT_SECRET"),
            encryption_key=env.fernet_keys("ENCRYPTION_KEY"),
            openai_api_key=env.string("OPENAI_API_KEY"),
            openai_base_url=env.url("OPENAI_BASE_URL", None),
            database_url=env.database_url("DATABASE_URL", cls.database_url),
            default_model=env.string("DEFAULT_MODEL") or cls.default_model,
            allowed_models=env.models("ALLOWED_MODELS"),
            admin_user_ids=env.user_ids("ADMIN_USER_IDS"),
            port=env.integer("PORT", cls.port, low=1, high=65535),
            metrics_port=env.integer("METRICS_PORT", cls.metrics_port, low=0, high=65535),
            system_prompt=env.string("SYSTEM_PROMPT") or cls.system_prompt,
            log_level=env.choice("LOG_LEVEL", cls.log_level, _LOG_LEVELS),
            log_content=env.boolean("LOG_CONTENT", cls.log_content),
            max_context_tokens=env.integer("MAX_CONTEXT_TOKENS", cls.max_context_tokens, low=256),
            max_file_bytes=env.integer(
                "MAX_FILE_BYTES", cls.max_file_bytes, low=1_000, high=1_000_000_000
            ),
            max_concurrent_turns=env.integer(
                "MAX_CONCURRENT_TURNS", cls.max_concurrent_turns, low=1
            ),
            http_threads=env.integer("HTTP_THREADS", cls.http_threads, low=1, high=512),
            database_timeout=env.seconds("DATABASE_TIMEOUT", cls.database_timeout),
            model_timeout=env.seconds("MODEL_TIMEOUT", cls.model_timeout),
            model_first_token_timeout=env.seconds(
                "MODEL_FIRST_TOKEN_TIMEOUT",
                env.seconds("MODEL_TIMEOUT", cls.model_first_token_timeout),
            ),
            model_idle_timeout=env.seconds(
                "MODEL_IDLE_TIMEOUT", env.seconds("MODEL_TIMEOUT", cls.model_idle_timeout)
            ),
            model_total_timeout=env.seconds("MODEL_TOTAL_TIMEOUT", cls.model_total_timeout),
            model_max_retries=env.integer("MODEL_MAX_RETRIES", cls.model_max_retries, high=10),
            model_provider=env.name("MODEL_PROVIDER"),
            model_prices=env.prices("MODEL_PRICES"),
            auto_migrate=env.boolean("AUTO_MIGRATE", cls.auto_migrate),
            shutdown_grace_seconds=env.seconds(
                "SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds
            ),
            turn_lease_seconds=env.seconds("TURN_LEASE_SECONDS", cls.turn_lease_seconds),
            turn_poll_seconds=env.seconds("TURN_POLL_SECONDS", cls.turn_poll_seconds),
            max_turn_age_seconds=env.seconds("MAX_TURN_AGE_SECONDS", cls.max_turn_age_seconds),
            suggested_prompts=env.prompts("SUGGESTED_PROMPTS"),
            retention_days=env.days("RETENTION_DAYS"),
            mcp_servers=env.mcp_servers("MCP_SERVERS", values),
            max_tool_calls=env.integer("MAX_TOOL_CALLS", cls.max_tool_calls, high=100),
            mcp_tool_timeout=env.seconds("MCP_TOOL_TIMEOUT", cls.mcp_tool_timeout),
        )

    def require(self, *names: str) -> None:
        """Fail with one `SettingsError` naming every one of `names` that is not set."""
        missing = [name for name in names if not getattr(self, name.lower())]
        if missing:
            said = " ".join(not_set(name) for name in missing)
            raise SettingsError(f"{said} {WHERE_SETTINGS_GO}")

    @property
    def oauth(self) -> bool:
        """Whether the app installs into many workspaces (SLACK_CLIENT_ID/SECRET are set)."""
        return bool(self.slack_client_id or self.slack_client_secret)

    def require_slack_credentials(self, *also: str, socket_mode: bool = False) -> None:
        """Fail unless the settings name a way to authorize (a bot token, or OAuth) and `also`.

        Every missing one is named at once, so a first run needs one round, not one per setting.
        """
        if not self.oauth:
            self.require("SLACK_BOT_TOKEN", *also)
            return
        if socket_mode:
            raise SettingsError(
                "SLACK_CLIENT_ID is set, but installing into many workspaces needs HTTP mode "
                "(Slack redirects the installer's browser to /slack/oauth_redirect): run "
                "`python -m bot serve`, or unset SLACK_CLIENT_ID and SLACK_CLIENT_SECRET."
            )
        self.require("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "ENCRYPTION_KEY", *also)

    @property
    def log_level_number(self) -> int:
        """The `logging` level for `log_level`."""
        return logging.getLevelNamesMapping()[self.log_level]


def not_set(name: str) -> str:
    """`NAME is not set: what to put in it.`"""
    return f"{name} is not set: {_REQUIRED_HINTS[name]}"


WHERE_SETTINGS_GO = (
    "Put settings in .env in the working directory (.env.example lists them all) or in the "
    "environment, then run `python -m bot check`."
)

_REQUIRED_HINTS = {
    "SLACK_BOT_TOKEN": "put the app's Bot User OAuth Token (xoxb-…) in it.",
    "SLACK_SIGNING_SECRET": "put the app's Signing Secret (Basic Information page) in it, "
    "or set SLACK_APP_TOKEN to run in Socket Mode.",
    "SLACK_APP_TOKEN": "put an app-level token (xapp-…) with connections:write in it, "
    "or run `python -m bot serve` for HTTP mode.",
    "SLACK_CLIENT_ID": "put the app's Client ID (Basic Information page) in it, or unset "
    "SLACK_CLIENT_SECRET to serve one workspace with SLACK_BOT_TOKEN.",
    "SLACK_CLIENT_SECRET": "put the app's Client Secret (Basic Information page) in it, or unset "
    "SLACK_CLIENT_ID to serve one workspace with SLACK_BOT_TOKEN.",
    "ENCRYPTION_KEY": "installed tokens are stored encrypted with it: make one with `python -c "
    "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`.",
    "OPENAI_API_KEY": "put the API key of your OpenAI-compatible endpoint in it "
    "(any non-empty value for endpoints without keys, such as Ollama).",
}


class _Env:
    """Typed reads of raw variables; every error names the variable, never a secret's value."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def string(self, name: str) -> str | None:
        value = self._values.get(name, "").strip()
        return value or None

    def token(self, name: str, prefix: str, what: str) -> str | None:
        value = self.string(name)
        if value is not None and not value.startswith(prefix):
            raise SettingsError(f"{name} does not look like {what}: it must start with {prefix!r}.")
        return value

    def fernet_keys(self, name: str) -> tuple[str, ...]:
        keys = tuple(part.strip() for part in (self.string(name) or "").split(",") if part.strip())
        for position, key in enumerate(keys, start=1):
            if not is_key(key):
                # Never echo a secret: say which of the keys is wrong.
                raise SettingsError(
                    f"{name} key {position} is not a Fernet key (32 url-safe base64-encoded "
                    "bytes): make one with `python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`."
                )
        return keys

    @overload
    def url(self, name: str, default: str, *, trailing_slash: bool = False) -> str: ...
    @overload
    def url(self, name: str, default: None, *, trailing_slash: bool = False) -> str | None: ...
    def url(self, name: str, default: str | None, *, trailing_slash: bool = False) -> str | None:
        value = self.string(name)
        if value is None:
            return default
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(
                f"{name} must be an http(s) URL, for example {default or 'https://…'}."
            )
        if trailing_slash and not value.endswith("/"):
            value += "/"
        return value

    def database_url(self, name: str, default: str) -> str:
        value = self.string(name) or default
        example = (
            "for example sqlite:///switchboard.db or "
            "postgresql://user:password@host:5432/switchboard"
        )
        if not re.match(r"^(sqlite|postgres|postgresql)(\+\w+)?://", value):
            raise SettingsError(f"{name} must be a URL for SQLite or PostgreSQL, {example}.")
        try:
            make_url(value).port  # noqa: B018 - parsing the port is the check
        except (ArgumentError, ValueError):
            # The value may hold a password: name the variable, never echo it.
            raise SettingsError(f"{name} is not a well-formed database URL: {example}.") from None
        return value

    def integer(self, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        raw = self.string(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, for example {default}.") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise SettingsError(f"{name} must be {bounds}, for example {default}.")
        return value

    def days(self, name: str) -> int | None:
        raw = self.string(name)
        if raw is None:
            return None
        value = raw.removesuffix("d").strip()
        if not re.fullmatch(r"[0-9]{1,6}", value) or not 1 <= int(value) <= MAX_RETENTION_DAYS:
            raise SettingsError(
                f"{name} must be a whole number of days between 1 and {MAX_RETENTION_DAYS}, "
                "for example 90 (leave it empty to keep conversations forever)."
            )
        return int(value)

    def seconds(self, name: str, default: float) -> float:
        raw = self.string(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not value > 0:
            raise SettingsError(
                f"{name} must be a positive number of seconds, for example {default:g}."
            )
        return value

    def mcp_servers(self, name: str, variables: Mapping[str, str]) -> tuple[ServerEntry, ...]:
        try:
            return load_servers(self.string(name), variables)
        except ToolConfigError as exc:
            raise SettingsError(f"{name}: {exc}") from None

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.string(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false.")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self.string(name) or default).upper()
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}.")
        return value

    def models(self, name: str) -> tuple[tuple[str, str], ...]:
        entries: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in (self.string(name) or "").split(","))):
            alias, _, model = item.partition("=")
            alias, model = alias.strip(), (model.strip() if _ else alias.strip())
            if not alias or not model or any(c.isspace() for c in alias + model):
                raise SettingsError(
                    f"{name} has a malformed entry {item!r}: use comma-separated model names or "
                    "alias=model pairs, for example gpt-4o,fast=gpt-4o-mini."
                )
            entries[alias] = model
        return tuple(entries.items())

    def name(self, name: str) -> str | None:
        value = self.string(name)
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][\w.-]*", value):
            raise SettingsError(
                f"{name} must be one word naming the provider, for example openai, "
                "openrouter or ollama."
            )
        return value.lower() if value else None

    def prices(self, name: str) -> tuple[tuple[str, Decimal, Decimal], ...]:
        example = "for example my-llama=0.10/0.30,other-model=1/2"
        entries: dict[str, tuple[Decimal, Decimal]] = {}
        for item in filter(None, (part.strip() for part in (self.string(name) or "").split(","))):
            model, _, price = item.rpartition("=")
            prompt, slash, completion = price.partition("/")
            try:
                pair = (Decimal(prompt.strip()), Decimal(completion.strip()))
            except ArithmeticError:
                pair = None
            if (
                not model.strip()
                or not slash
                or pair is None
                or not all(p.is_finite() and p >= 0 for p in pair)
            ):
                raise SettingsError(
                    f"{name} has a malformed entry {item!r}: use comma-separated "
                    f"model=INPUT/OUTPUT prices in USD per million tokens, {example}."
                )
            entries[model.strip()] = pair
        return tuple((model, *pair) for model, pair in entries.items())

    def user_ids(self, name: str) -> frozenset[str]:
        ids = [part.strip() for part in (self.string(name) or "").split(",") if part.strip()]
        bad = [i for i in ids if not _SLACK_ID.match(i)]
        if bad:
            raise SettingsError(
                f"{name} has {bad[0]!r}, which is not a Slack user id: use comma-separated ids "
                "such as U012ABCDEF,U034GHIJKL (profile → ⋮ → Copy member ID)."
            )
        return frozenset(ids)

    def prompts(self, name: str) -> tuple[tuple[str, str], ...]:
        example = "for example Summarise|Summarise this thread;Translate|Translate to French"
        prompts = []
        for item in filter(None, (part.strip() for part in (self.string(name) or "").split(";"))):
            title, bar, message = item.partition("|")
            if not bar or not title.strip() or not message.strip():
                raise SettingsError(
                    f"{name} has a malformed entry {item!r}: use title|message pairs separated "
                    f"by semicolons, {example}."
                )
            prompts.append((title.strip(), message.strip()))
        if len(prompts) > MAX_SUGGESTED_PROMPTS:
            raise SettingsError(
                f"{name} has {len(prompts)} prompts; Slack shows at most "
                f"{MAX_SUGGESTED_PROMPTS}, {example}."
            )
        return tuple(prompts)
