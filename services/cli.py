"""The ``datamig`` command line: the launcher that knows every service.

Services never import each other; this module is the one place that composes them
(``serve all`` runs the four in one process, sharing one transport).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from shared.connections import masked_url
from shared.errors import ConfigError, TransportError
from shared.logs import configure_logging
from shared.settings import Settings, load_settings

log = logging.getLogger("datamig")
SERVICES = ("api", "scheduler", "extractor", "loader", "all")


def _wait_for_signal(stop: Callable[[], None]) -> None:
    done = threading.Event()

    def _handler(signum: int, _frame: object) -> None:
        log.info("signal %s: finishing current work and stopping", signum)
        done.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    done.wait()
    stop()


def _start_metrics(settings: Settings) -> None:
    if settings.metrics_port:
        from shared.metrics import start_metrics_server

        start_metrics_server(settings.metrics_port)


def _scheduler_box(settings: Settings):  # type: ignore[no-untyped-def]
    """The scheduler reads destinations only to settle executions whose worker vanished."""
    from shared.bootstrap import build_secret_box
    from shared.errors import ConfigError

    try:
        return build_secret_box(settings)
    except ConfigError:
        log.warning("no DM_SECRET_KEY: the scheduler cannot ask a destination whether a vanished loader "
                    "committed; such executions are failed and retried")
        return None


def start_workers(settings: Settings, names: Sequence[str], *, transport=None, topology=None):  # type: ignore[no-untyped-def]
    """Start scheduler/extractor/loader (as named) and return a function that stops them."""
    from shared.bootstrap import build_secret_box, build_store, build_transport
    from shared.store.db import session_factory

    stops: list[Callable[[], None]] = []
    if "extractor" in names or "loader" in names:
        box = build_secret_box(settings)  # a missing key fails before anything connects
    if transport is None:
        transport, topology = build_transport(settings, name="+".join(names))
    if "extractor" in names:
        from services.extractor.worker import Extractor

        extractor = Extractor(transport, topology, box, batch_rows=settings.batch_rows,
                              batch_queue_max=settings.batch_queue_max, heartbeat_s=settings.heartbeat_s,
                              concurrency=settings.extractor_concurrency, bulk_text=settings.bulk_text,
                              bulk_binary=settings.bulk_binary, bulk_batch_rows=settings.bulk_batch_rows)
        extractor.start()
        stops.append(extractor.stop)
    if "loader" in names:
        from services.loader.worker import Loader

        loader = Loader(transport, topology, box, heartbeat_s=settings.heartbeat_s,
                        concurrency=settings.loader_concurrency)
        loader.start()
        stops.append(loader.stop)
    if "scheduler" in names:
        from services.scheduler.scheduler import Scheduler

        scheduler = Scheduler(session_factory(build_store(settings)), transport, topology, poll_s=settings.poll_s,
                              worker_lost_s=settings.worker_lost_s, batch_rows=settings.batch_rows,
                              timeout_scale=settings.timeout_scale, box=_scheduler_box(settings))
        thread = threading.Thread(target=scheduler.serve, name="scheduler", daemon=True)
        thread.start()
        stops.append(scheduler.stop)

    def stop_all() -> None:
        for stop in reversed(stops):
            stop()

    return stop_all


def serve(name: str, settings: Settings, *, host: str | None, port: int | None) -> None:
    """Run one service (or all) until SIGTERM/SIGINT. Raises ConfigError on bad settings."""
    if name in ("api", "all"):
        from services.api.server import build_api, serve_api

        app = build_api(settings)
        stop_workers = None
        if name == "all":
            rt = app.state.runtime
            stop_workers = start_workers(settings, ("scheduler", "extractor", "loader"),
                                         transport=rt.transport, topology=rt.topology)
        try:
            serve_api(app, settings, host=host, port=port)
        finally:
            if stop_workers:
                stop_workers()
        return
    _start_metrics(settings)
    _wait_for_signal(start_workers(settings, (name,)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datamig", description="Semantico Data Migration")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run a service (or all of them in one process)")
    p_serve.add_argument("service", choices=SERVICES)
    p_serve.add_argument("--host", default=None, help="API bind address (default DM_API_HOST)")
    p_serve.add_argument("--port", type=int, default=None, help="API port (default DM_API_PORT)")
    from services.cliapp.commands import add_subcommands
    from services.cliapp.tokens import add_token_commands

    add_subcommands(sub)
    add_token_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from services.cliapp.commands import COMMANDS, dispatch

    if args.command in COMMANDS:  # API clients: need DM_API_URL/DM_API_TOKEN only, not the server settings
        sys.exit(dispatch(args))
    try:
        settings = load_settings()
    except Exception as exc:  # noqa: BLE001 - pydantic explains which variable is wrong
        print(f"datamig: invalid settings: {exc}", file=sys.stderr)
        sys.exit(2)
    configure_logging(settings.log_level, json_lines=settings.log_json, service=getattr(args, "service", "cli"))
    try:
        if args.command == "serve":
            serve(args.service, settings, host=args.host, port=args.port)
        elif args.command == "token":
            from services.cliapp.tokens import run_token_command

            sys.exit(run_token_command(args, settings))
    except ConfigError as exc:
        print(f"datamig: {exc}", file=sys.stderr)
        sys.exit(2)
    except TransportError as exc:
        print(f"datamig: cannot reach the broker at {masked_url(settings.amqp_url)}: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
