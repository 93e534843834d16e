"""``lifecycle serve``: the HTTP API (CONTRACT.md §5, docs/api.md) on uvicorn.

In: ``--host`` / ``--port`` / ``--workers`` / ``--rules`` / ``--templates`` and the settings of
``engine.runtime.settings`` (Temporal as the worker reaches it, keys, secret). Out: a
running server until interrupted. It starts and answers while Temporal is unreachable
(ingestion answers 503 with ``Retry-After``; ``/healthz`` says what is missing).
"""

from __future__ import annotations

import logging
import sys

from engine.cli import ExitCode


def add_arguments(p) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: $LIFECYCLE_API_PORT or 8080)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (default 1; each has its own in-flight bound and metrics)",
    )
    p.add_argument("--rules", help="rules folder (default: $LIFECYCLE_RULES or rules)")
    p.add_argument(
        "--templates", help="templates folder (default: $LIFECYCLE_TEMPLATES or templates)"
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def run(args) -> ExitCode:
    import uvicorn

    from engine.runtime.keys import load_keys
    from engine.runtime.settings import Settings, SettingsError, override

    # Folders given here reach every server process through the environment they inherit.
    if args.rules:
        override("LIFECYCLE_RULES", args.rules)
    if args.templates:
        override("LIFECYCLE_TEMPLATES", args.templates)
    try:
        settings = Settings.from_env()
    except (SettingsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return ExitCode.USAGE
    keys = load_keys(settings)  # generated once here, before the processes start
    port = args.port or settings.api_port
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    where = f"; generated keys are in {keys.generated}" if keys.generated else ""
    print(
        f"lifecycle API on http://{args.host}:{port} (Temporal: {settings.temporal_target}{where})",
        flush=True,
    )
    uvicorn.run(
        "engine.api.app:app_from_env",
        factory=True,
        host=args.host,
        port=port,
        workers=args.workers if args.workers > 1 else None,
        access_log=False,  # engine.api.app logs each request without personal data
        log_level=args.log_level,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
    return ExitCode.OK
