"""Every environment variable the engine reads, in one place.

In: a mapping of environment variables (``os.environ`` by default).
Out: ``Settings``, a frozen dataclass with one field per setting (the SMTP ones as an
``engine.delivery.smtp.SmtpSettings``), each parsed and checked: a bad value raises
``SettingsError`` naming the variable, what it must be and its default.

``VARIABLES`` is the table of every variable (name, default, meaning) that
docs/operations.md shows; a test checks that the page lists exactly these. No other
module of the engine reads ``os.environ``: they take a ``Settings`` (``Settings.from_env``)
or one value of it (``setting``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.delivery.render_pool import RenderLimits
from engine.delivery.smtp import SmtpSettings


class SettingsError(ValueError):
    """An environment variable has a value that cannot be used."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _number(kind: type, unit: str = "a number") -> Callable:
    def parse(name: str, text: str):
        try:
            return kind(text)
        except ValueError:
            raise SettingsError(f"{name} must be {unit}, not {text!r}") from None

    return parse


def _positive(kind: type, unit: str = "a number") -> Callable:
    base = _number(kind, unit)

    def parse(name: str, text: str):
        value = base(name, text)
        if value <= 0:
            raise SettingsError(f"{name} must be positive, not {text!r}")
        return value

    return parse


def _seconds_within(low: float, high: float) -> Callable:
    base = _number(float, "seconds")

    def parse(name: str, text: str):
        value = base(name, text)
        if not low < value <= high:
            raise SettingsError(
                f"{name} must be between {low:g} and {high:g} seconds, not {text!r}"
            )
        return value

    return parse


def _port(name: str, text: str) -> int:
    value = _number(int)(name, text)
    if not 0 < value < 65536:
        raise SettingsError(f"{name} must be a port (1-65535), not {text!r}")
    return value


def _bool(name: str, text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, not {text!r}")


def _text(name: str, text: str) -> str:
    return text


def _log_level(name: str, text: str) -> str:
    level = text.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(f"{name} must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {text!r}")
    return level


def _keys(name: str, text: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    for key in keys:
        if len(key) < 8 or not key.isprintable() or ":" in key or " " in key:
            raise SettingsError(
                f"{name}: each key must be at least 8 printable characters without spaces or ':'"
            )
    return keys


def _secret(name: str, text: str) -> str:
    if len(text) < 16:
        raise SettingsError(f"{name} must be at least 16 characters (a random string)")
    return text


def _url(name: str, text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(
            f"{name} must be an http(s) address without query, like https://mail.example.com,"
            f" not {text!r}"
        )
    return text.rstrip("/")


@dataclass(frozen=True)
class Variable:
    """One environment variable: the ``Settings`` field it sets (None: part of ``smtp``),
    how it is parsed, its default as shown to operators, and what it does."""

    name: str
    field: str | None
    default: str
    meaning: str
    parse: Callable[[str, str], object] = _text


VARIABLES: tuple[Variable, ...] = (
    # Temporal
    Variable(
        "TEMPORAL_ADDRESS",
        "temporal_address",
        "(embedded)",
        "`host:port` of the Temporal frontend; when set, no embedded server is started",
    ),
    Variable("TEMPORAL_NAMESPACE", "temporal_namespace", "`default`", "namespace"),
    Variable("TEMPORAL_API_KEY", "temporal_api_key", "", "API key (Temporal Cloud); implies TLS"),
    Variable(
        "TEMPORAL_TLS",
        "temporal_tls",
        "`false`",
        "`true` for server-authenticated TLS without a client certificate",
        _bool,
    ),
    Variable(
        "TEMPORAL_TLS_CERT",
        "temporal_tls_cert",
        "",
        "mTLS client certificate file (with `TEMPORAL_TLS_KEY`)",
    ),
    Variable(
        "TEMPORAL_TLS_KEY",
        "temporal_tls_key",
        "",
        "mTLS client key file (with `TEMPORAL_TLS_CERT`)",
    ),
    # SMTP (parsed by SmtpSettings.from_env)
    Variable("SMTP_HOST", None, "(embedded sink)", "the relay; when set, no sink is started"),
    Variable("SMTP_PORT", None, "25, 587 with STARTTLS, 465 with TLS", "the relay's port"),
    Variable(
        "SMTP_STARTTLS",
        None,
        "`auto`",
        "`auto` (use it when offered), `true` (require it), `false`",
    ),
    Variable("SMTP_TLS", None, "`false`", "`true` for implicit TLS (port 465)"),
    Variable("SMTP_USERNAME", None, "", "AUTH user name"),
    Variable("SMTP_PASSWORD", None, "", "AUTH password (needs `SMTP_USERNAME`)"),
    Variable("SMTP_TIMEOUT", None, "30", "seconds per SMTP operation"),
    Variable("SMTP_CA_FILE", None, "(system CAs)", "a CA bundle for the relay's certificate"),
    # Delivery
    Variable(
        "DATABASE_URL",
        "database_url",
        "(SQLite under `LIFECYCLE_DATA`)",
        "PostgreSQL for the sent-ledger, e.g. `postgresql://lifecycle@db/lifecycle`",
    ),
    Variable(
        "LIFECYCLE_LEDGER_TIMEOUT",
        "ledger_timeout",
        "5",
        "seconds any sent-ledger operation may wait for the database (a lock, a slow statement), at most 300; keep it well below the send heartbeat timeout (15 s)",
        _seconds_within(0, 300),
    ),
    Variable(
        "LIFECYCLE_SEND_LEASE",
        "send_lease",
        "120",
        "seconds an attempt's claim on an email lasts (at least `2 × SMTP_TIMEOUT + 10`); after a worker crash, the email goes out once this has run out",
        _number(float, "seconds"),
    ),
    Variable(
        "LIFECYCLE_RENDER_TIMEOUT",
        "render_timeout",
        "5",
        "seconds a template render may take",
        _positive(float),
    ),
    Variable(
        "LIFECYCLE_RENDER_MEMORY_MB",
        "render_memory_mb",
        "256",
        "address space of a render process, MB",
        _positive(int),
    ),
    Variable(
        "LIFECYCLE_RENDER_PROCESSES",
        "render_processes",
        "CPUs, at most 4",
        "render processes",
        _positive(int),
    ),
    # The worker
    Variable("LIFECYCLE_RULES", "rules_dir", "`rules`", "where the worker reads rules"),
    Variable(
        "LIFECYCLE_TEMPLATES", "templates_dir", "`templates`", "where the worker reads templates"
    ),
    Variable(
        "LIFECYCLE_MAX_CACHED_WORKFLOWS",
        "max_cached_workflows",
        "1000",
        "customers a worker keeps in memory between events (~180 KB each); the others are replayed from history when an event or timer wakes them",
        _positive(int),
    ),
    Variable(
        "LIFECYCLE_MAX_CONCURRENT_CALLS",
        "max_concurrent_calls",
        "20",
        "developers' activities (`call`) running at once, on their own task queue and threads",
        _positive(int),
    ),
    Variable(
        "LIFECYCLE_STICKY_QUEUE_TIMEOUT",
        "sticky_queue_timeout",
        "10",
        "seconds a customer's next workflow task waits for the worker that has it in memory before any worker may take it (after that worker died)",
        _positive(float),
    ),
    Variable(
        "LIFECYCLE_METRICS_PORT",
        "metrics_port",
        "(off)",
        "the worker serves Prometheus metrics on 127.0.0.1:PORT/metrics: messages by journey, template, class and status; journeys started and ended; conversions; and the Temporal SDK's own metrics",
        _port,
    ),
    Variable(
        "LIFECYCLE_RECORD",
        "record",
        "`true`",
        "the worker keeps the durable record of journeys (starts, variants, messages, ends) in the sent-ledger's database, which `lifecycle report --live` reads; `false` turns it off",
        _bool,
    ),
    Variable("LOG_LEVEL", "log_level", "`INFO`", "worker log level", _log_level),
    # Embedded defaults
    Variable(
        "LIFECYCLE_DATA",
        "data_dir",
        "`./var`",
        "data folder of the embedded defaults (Temporal's database, the outbox, the SQLite ledger, activities' data)",
    ),
    Variable(
        "LIFECYCLE_TEMPORAL_PORT",
        "temporal_port",
        "7233",
        "port of the embedded Temporal server (and of the default `TEMPORAL_ADDRESS`)",
        _port,
    ),
    Variable(
        "LIFECYCLE_UI_PORT",
        "ui_port",
        "`LIFECYCLE_TEMPORAL_PORT` + 1000",
        "port of the embedded Temporal web UI",
        _port,
    ),
    Variable(
        "LIFECYCLE_SMTP_PORT", "smtp_sink_port", "2525", "port of the embedded SMTP sink", _port
    ),
    # The HTTP API (lifecycle serve) and unsubscribe links
    Variable(
        "LIFECYCLE_WRITE_KEYS",
        "write_keys",
        "(generated once under `LIFECYCLE_DATA`)",
        "comma-separated keys that may send events (`/v1/events`, `/v1/track`, ...)",
        _keys,
    ),
    Variable(
        "LIFECYCLE_ADMIN_KEYS",
        "admin_keys",
        "(generated once under `LIFECYCLE_DATA`)",
        "comma-separated keys that may read customers (`/v1/customers/{id}`)",
        _keys,
    ),
    Variable(
        "LIFECYCLE_SECRET",
        "secret",
        "(generated once under `LIFECYCLE_DATA`)",
        "signs unsubscribe links (HMAC-SHA256), at least 16 characters; the worker and `lifecycle serve` need the same one, and changing it invalidates every link already sent",
        _secret,
    ),
    Variable(
        "LIFECYCLE_PUBLIC_URL",
        "public_url",
        "",
        "where customers reach `lifecycle serve` (`https://mail.example.com`), for links in emails when the rules' `settings.public_url` is not set",
        _url,
    ),
    Variable(
        "LIFECYCLE_API_PORT",
        "api_port",
        "8080",
        "port of `lifecycle serve` when `--port` is not given (and of the API `./run` starts)",
        _port,
    ),
    Variable(
        "LIFECYCLE_API_MAX_IN_FLIGHT",
        "api_max_in_flight",
        "64",
        "ingestion requests `lifecycle serve` handles at once (per process); more get 429 with `Retry-After`",
        _positive(int),
    ),
    Variable(
        "LIFECYCLE_API_TEMPORAL_TIMEOUT",
        "api_temporal_timeout",
        "5",
        "seconds an API request waits for Temporal to accept its events before answering 503 with `Retry-After`",
        _seconds_within(0, 60),
    ),
    # DKIM signing (engine.delivery.signing): all three, or none
    Variable(
        "DKIM_DOMAIN",
        "dkim_domain",
        "",
        "signing domain (`d=`) of the DKIM signature every email carries; with DKIM_SELECTOR and DKIM_KEY_FILE",
    ),
    Variable(
        "DKIM_SELECTOR",
        "dkim_selector",
        "",
        "DKIM selector (`s=`): the public key is published at `SELECTOR._domainkey.DOMAIN`",
    ),
    Variable(
        "DKIM_KEY_FILE",
        "dkim_key_file",
        "",
        "PEM file of the RSA private key that signs (keep it readable by the worker only)",
    ),
    # Tests and tools
    Variable(
        "LIFECYCLE_READY_FILE",
        "ready_file",
        "",
        "`python worker.py` writes its pid here once it is ready (used by `./run` and the tests)",
    ),
    Variable(
        "LIFECYCLE_FAULT_PAUSE_AFTER_SEND",
        "fault_pause_after_send",
        "0",
        "tests only: seconds the email activity pauses after SMTP accepted a message, before recording it (a window to kill the worker in)",
        _number(float, "seconds"),
    ),
    Variable(
        "LIFECYCLE_DEBUG",
        "debug",
        "`false`",
        "`simulate` prints each customer's final status",
        _bool,
    ),
)


@dataclass(frozen=True)
class Settings:
    """The engine's configuration; ``Settings()`` is the default of every variable."""

    temporal_address: str = ""  # "" = the embedded dev server on temporal_port
    temporal_namespace: str = "default"
    temporal_api_key: str = ""
    temporal_tls: bool = False
    temporal_tls_cert: str = ""
    temporal_tls_key: str = ""
    smtp: SmtpSettings | None = None  # None: no SMTP_HOST, the embedded sink
    database_url: str = ""  # "" = SQLite under data_dir
    ledger_timeout: float = 5.0
    send_lease: float = 120.0
    render_timeout: float = 5.0
    render_memory_mb: int = 256
    render_processes: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))
    rules_dir: str = "rules"
    templates_dir: str = "templates"
    max_cached_workflows: int = 1000
    max_concurrent_calls: int = 20
    sticky_queue_timeout: float = 10.0  # the SDK's default
    metrics_port: int | None = None  # None: no metrics endpoint
    record: bool = True  # the durable record of journeys (engine.runtime.record)
    log_level: str = "INFO"
    data_dir: str = "var"
    temporal_port: int = 7233
    ui_port: int | None = None  # None = temporal_port + 1000
    smtp_sink_port: int = 2525
    write_keys: tuple[str, ...] = ()  # () = generated under data_dir (engine.runtime.keys)
    admin_keys: tuple[str, ...] = ()
    secret: str = ""
    public_url: str = ""
    api_port: int = 8080
    api_max_in_flight: int = 64
    api_temporal_timeout: float = 5.0
    ready_file: str = ""
    fault_pause_after_send: float = 0.0
    debug: bool = False
    dkim_domain: str = ""
    dkim_selector: str = ""
    dkim_key_file: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (default ``os.environ``); unset or empty means default.
        Raises ``SettingsError`` (or ``SmtpSettingsError``) naming the bad variable."""
        env = os.environ if env is None else env
        values: dict = {}
        for var in VARIABLES:
            if var.field is None:
                continue
            text = env.get(var.name, "").strip()
            if text:
                values[var.field] = var.parse(var.name, text)
        if env.get("SMTP_HOST", "").strip():
            values["smtp"] = SmtpSettings.from_env(env)
        else:
            SmtpSettings.from_env(env)  # still check what is set
        settings = cls(**values)
        if bool(settings.temporal_tls_cert) != bool(settings.temporal_tls_key):
            raise SettingsError(
                "TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together: set both or neither"
            )
        return settings

    # ------------------------------------------------------------------ derived values

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def ledger_file(self) -> Path:
        """The SQLite sent-ledger (and durable record) when ``DATABASE_URL`` is not set."""
        return self.data_path / "ledger.sqlite"

    @property
    def temporal_target(self) -> str:
        """Where clients connect: ``TEMPORAL_ADDRESS``, else the embedded server."""
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def web_ui_port(self) -> int:
        return self.ui_port if self.ui_port is not None else self.temporal_port + 1000

    @property
    def render_limits(self) -> RenderLimits:
        return RenderLimits(self.render_timeout, self.render_memory_mb, self.render_processes)

    def sink_smtp(self) -> SmtpSettings:
        """The SMTP settings to send with: the relay's, or the embedded sink's."""
        return self.smtp or SmtpSettings(host="127.0.0.1", port=self.smtp_sink_port)


def setting(name: str, env: Mapping[str, str] | None = None):
    """One field of ``Settings`` read from ``env`` (default ``os.environ``), checking only
    its own variable: for values read where they are used (a ledger's default timeout)."""
    env = os.environ if env is None else env
    for var in VARIABLES:
        if var.field == name:
            text = env.get(var.name, "").strip()
            return var.parse(var.name, text) if text else getattr(Settings(), name)
    raise KeyError(name)


# What a command line needs to reach the same deployment as this process: printed in
# front of the commands a worker or ./run suggests. Never credentials (TEMPORAL_API_KEY).
COMMAND_VARIABLES = (
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "LIFECYCLE_TEMPORAL_PORT",
    "LIFECYCLE_RULES",
)


def command_environment(
    env: Mapping[str, str] | None = None, names: tuple[str, ...] = COMMAND_VARIABLES
) -> str:
    """``NAME=value `` for each of ``names`` (default ``COMMAND_VARIABLES``) set in ``env``
    (default ``os.environ``), shell-quoted: the prefix that makes a printed ``lifecycle``
    command reach the deployment this process uses, when typed in another shell."""
    import shlex

    env = os.environ if env is None else env
    parts = [
        f"{name}={shlex.quote(env[name].strip())}" for name in names if env.get(name, "").strip()
    ]
    return "".join(part + " " for part in parts)


def override(name: str, value: str) -> Callable[[], None]:
    """Set the variable ``name`` for this process (the simulator points ``LIFECYCLE_DATA``
    at its own folder, for the custom activities it runs); returns what restores it."""
    old = os.environ.get(name)
    os.environ[name] = value

    def restore() -> None:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old

    return restore


def variables_table() -> str:
    """The Markdown table of docs/operations.md: every variable, its default, its meaning."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for var in VARIABLES:
        lines.append(f"| `{var.name}` | {var.default or '(unset)'} | {var.meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m engine.runtime.settings > the table of docs/operations.md
    print(variables_table(), end="")
