"""The `formflow` command: serve, worker, scheduler, migrate, create-admin, seed-demo, import-org, audit.

Every command reads the same `FORMFLOW_*` settings; a bad setting stops it with the variable's
name and the reason (exit code 2).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from web.settings import Settings, SettingsError, load_settings

Command = Callable[[Settings, argparse.Namespace], int]


def _run(coro_fn: Callable[[], Awaitable[int]], settings: Settings) -> int:
    from storage.database import is_postgres_url

    async def wrapped() -> int:
        from storage.tables import Person

        engine = Person._meta.db
        pooled = is_postgres_url(settings.database_url)
        if pooled:
            await engine.start_connection_pool(min_size=1, max_size=4)
        try:
            return await coro_fn()
        finally:
            if pooled:
                await engine.close_connection_pool()

    return asyncio.run(wrapped())


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from storage.migrate import migrate

    async def go() -> int:
        await migrate()
        return 0

    return _run(go, settings)


def cmd_seed_demo(settings: Settings, args: argparse.Namespace) -> int:
    from web.demo import seed_demo

    async def go() -> int:
        created = await seed_demo()
        print(
            "demo organisation created (password: formflow)"
            if created
            else "demo organisation already present"
        )
        return 0

    return _run(go, settings)


def cmd_create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from storage import audit
    from storage.database import write_transaction
    from storage.org import PersonDraft, upsert_person
    from storage.tables import Person, Position
    from web.auth.passwords import MIN_PASSWORD_LENGTH, hash_password

    password = args.password or getpass.getpass("password: ")
    if len(password) < MIN_PASSWORD_LENGTH:
        print(f"error: the password needs at least {MIN_PASSWORD_LENGTH} characters", file=sys.stderr)
        return 2

    async def go() -> int:
        async with write_transaction(Person._meta.db):
            if not await Position.exists().where(Position.code == "system-admin"):
                await Position.insert(
                    Position(
                        code="system-admin",
                        name_zh="系统管理员",
                        name_en="System administrator",
                        roles=["system_admin", "process_admin"],
                    )
                )
            person_id, before, after = await upsert_person(
                PersonDraft(
                    employee_no=args.employee_no,
                    name=args.name,
                    position_code="system-admin",
                    password_hash=hash_password(password),
                )
            )
            await audit.record(
                "org.admin_created",
                audit.Actor(name="formflow create-admin"),
                target_type="person",
                target_id=person_id,
                before=before,
                after=after,
            )
        print(f"admin {args.employee_no} ready")
        return 0

    return _run(go, settings)


def cmd_import_org(settings: Settings, args: argparse.Namespace) -> int:
    from storage import audit
    from storage.database import write_transaction
    from storage.org import OrgError
    from storage.org_import import (
        ImportFileError,
        ImportPlan,
        ImportResult,
        apply_plan,
        existing_codes,
        plan_import,
        read_rows,
    )
    from storage.tables import Person

    path = Path(args.file)
    if not path.is_file():
        print(f"error: {path} does not exist", file=sys.stderr)
        return 2
    try:
        rows = read_rows(path)
    except ImportFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def go() -> int:
        plan, errors = plan_import(rows, *await existing_codes())
        if plan is None:
            print(f"{path.name}: {len(errors)} problem(s); nothing was imported", file=sys.stderr)
            for error in errors:
                print(f"  row {error.row}, column {error.column}: {error.reason}", file=sys.stderr)
            return 1
        if args.dry_run:
            print(f"{path.name} is valid: {len(plan.departments)} departments, {len(plan.people)} people")
            return 0
        try:
            async with write_transaction(Person._meta.db):
                result = await _apply(plan)
        except OrgError as exc:
            print(f"\n{path.name}: {exc}; nothing was imported", file=sys.stderr)
            return 1
        print(f"\nimported {result.departments} departments and {result.people} people")
        return 0

    async def _apply(plan: ImportPlan) -> ImportResult:
        result = await apply_plan(plan, progress=_progress_bar)
        await audit.record(
            "org.imported",
            audit.Actor(name="formflow import-org"),
            target_type="file",
            target_id=path.name[:64],
            after={
                "departments": [d.code for d in plan.departments],
                "people": [p.employee_no for p in plan.people],
            },
        )
        return result

    return _run(go, settings)


def _progress_bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    from storage.audit import verify_chain

    async def go() -> int:
        report = await verify_chain()
        if report.ok:
            print(f"audit chain intact: {report.checked} entries verified")
            return 0
        assert report.broken is not None
        print(
            f"audit chain BROKEN at entry {report.broken.id}: {report.broken.reason} "
            f"({report.checked} entries before it verified)",
            file=sys.stderr,
        )
        return 1

    return _run(go, settings)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    workers = args.workers or settings.web_workers
    uvicorn.run(
        "web.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=True,
    )
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    import dramatiq

    from web.background import configure_plugins, start_broker
    from web.observability import configure_logging

    configure_logging(settings.log_level, settings.log_json)
    configure_plugins(settings)
    broker = start_broker(settings)
    worker = dramatiq.Worker(broker, worker_threads=args.threads)
    worker.start()
    print(f"worker running ({args.threads} threads) on {settings.broker_url.split('@')[-1]}", flush=True)
    _wait_for_signal()
    worker.stop(timeout=10_000)
    return 0


def cmd_scheduler(settings: Settings, args: argparse.Namespace) -> int:
    from runtime.scheduler import Scheduler
    from storage.objects import object_store
    from web.background import periodic_jobs, start_broker
    from web.observability import configure_logging

    configure_logging(settings.log_level, settings.log_json)
    scheduler = Scheduler(periodic_jobs(start_broker(settings), object_store(settings)))

    async def go() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, scheduler.stop)
        await scheduler.run_forever()
        return 0

    return _run(go, settings)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="formflow", description="Formflow: forms and approval flows.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the web app and API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="server worker processes")
    serve.set_defaults(fn=cmd_serve)

    worker = sub.add_parser("worker", help="run background jobs from the broker")
    worker.add_argument("--threads", type=int, default=4)
    worker.set_defaults(fn=cmd_worker)

    sub.add_parser("scheduler", help="fire due deadlines and run periodic jobs").set_defaults(
        fn=cmd_scheduler
    )
    sub.add_parser("migrate", help="apply database migrations").set_defaults(fn=cmd_migrate)
    sub.add_parser("seed-demo", help="create the demo organisation once").set_defaults(fn=cmd_seed_demo)

    admin = sub.add_parser("create-admin", help="create or reset a system administrator")
    admin.add_argument("employee_no")
    admin.add_argument("--name", default="Administrator")
    admin.add_argument("--password", help="prompted for when omitted")
    admin.set_defaults(fn=cmd_create_admin)

    imp = sub.add_parser("import-org", help="import departments and people from CSV or XLSX (all or nothing)")
    imp.add_argument("file")
    imp.add_argument("--dry-run", action="store_true", help="check the file, write nothing")
    imp.set_defaults(fn=cmd_import_org)

    aud = sub.add_parser("audit", help="audit trail tools")
    aud_sub = aud.add_subparsers(dest="audit_command", required=True)
    aud_sub.add_parser("verify", help="check the hash chain; names the first broken entry").set_defaults(
        fn=cmd_audit
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fn: Command = args.fn
    return fn(settings, args)


def entry() -> Any:
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
