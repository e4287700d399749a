"""Formflow deployed as in production, on this machine's loopback: the topology of compose.yaml.

    .venv/bin/python bench/production.py                 # start it, print the URL, run until Ctrl-C
    .venv/bin/python bench/production.py --web-workers 3

PostgreSQL (the running server, in a scratch database `formflow_load` made afresh), a Redis of
its own on a free port (so stopping it hurts nobody else; with an append-only file, as in
compose.yaml, so a restart keeps the queued jobs), an S3 endpoint (moto's server), and
Formflow as separate processes: `formflow serve --workers N`, `formflow worker` and `formflow
scheduler`. `bench/load.py` and the fault runs drive a `Deployment` from Python: kill and
restart any process, stop and start the broker, restart PostgreSQL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MOTO = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def psql(sql: str, url: str = PG_ADMIN_URL) -> str:
    done = subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


class Deployment:
    """The processes of one deployment; a context manager that starts and stops them all."""

    def __init__(
        self, *, web_workers: int = 2, worker_threads: int = 4, database: str = "formflow_load"
    ) -> None:
        self.web_workers = web_workers
        self.worker_threads = worker_threads
        self.database = database
        self.home = Path(tempfile.mkdtemp(prefix="formflow-production-"))
        self.port = free_port()
        self.redis_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.database_url = f"postgresql://postgres@127.0.0.1:5432/{database}"
        self.processes: dict[str, subprocess.Popen[Any]] = {}
        self.moto: subprocess.Popen[str] | None = None
        self.env: dict[str, str] = {}

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Deployment:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        psql(f'CREATE DATABASE "{self.database}"')
        self.start_redis()
        self.moto = subprocess.Popen(
            [sys.executable, "-c", MOTO],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.moto.stdout is not None
        s3_port = self.moto.stdout.readline().strip()
        self.env = {
            **os.environ,
            "FORMFLOW_MODE": "dev",
            "FORMFLOW_DATABASE_URL": self.database_url,
            "FORMFLOW_DATABASE_POOL_SIZE": "10",
            "FORMFLOW_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0?heartbeat_timeout=30000&maintenance_chance=10000",
            "FORMFLOW_IN_PROCESS_WORKER": "false",
            "FORMFLOW_STORAGE_BACKEND": "s3",
            "FORMFLOW_S3_ENDPOINT": f"127.0.0.1:{s3_port}",
            "FORMFLOW_S3_ACCESS_KEY": "production-bench",
            "FORMFLOW_S3_SECRET_KEY": "production-bench",
            "FORMFLOW_S3_BUCKET": "formflow",
            "FORMFLOW_VAR_DIR": str(self.home),
            "FORMFLOW_SECRET_KEY": "production-bench-secret-production-bench-0123",
            "FORMFLOW_LOG_LEVEL": "WARNING",
            "FORMFLOW_PASSWORD_HASH_TIME_COST": "1",
            "FORMFLOW_PASSWORD_HASH_MEMORY_KIB": "1024",
        }
        self.formflow("migrate")
        self.formflow("seed-demo")
        for name in ("serve", "worker", "scheduler"):
            self.start_process(name)
        self.wait_ready()

    def stop(self) -> None:
        for name in list(self.processes):
            self.stop_process(name)
        if self.moto is not None and self.moto.stdin is not None:
            self.moto.stdin.close()
            self.moto.wait(timeout=10)
        self.stop_redis()
        with contextlib.suppress(RuntimeError):
            psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        shutil.rmtree(self.home, ignore_errors=True)

    # -- processes ------------------------------------------------------------------------

    def formflow(self, *args: str) -> None:
        done = subprocess.run(
            [str(BIN / "formflow"), *args], env=self.env, capture_output=True, text=True, cwd=ROOT
        )
        if done.returncode:
            raise RuntimeError(f"formflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def command(self, name: str) -> list[str]:
        if name == "serve":
            return [
                str(BIN / "formflow"), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(self.web_workers),
            ]  # fmt: skip
        if name == "worker":
            return [str(BIN / "formflow"), "worker", "--threads", str(self.worker_threads)]
        return [str(BIN / "formflow"), name]

    def start_process(self, name: str) -> None:
        log = (self.home / f"{name}.log").open("a")
        self.processes[name] = subprocess.Popen(
            self.command(name),
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop_process(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def kill(self, name: str) -> None:
        """kill -9 the process (its whole group: a server's workers go too)."""
        self.stop_process(name, signal.SIGKILL)

    def kill_one_server_worker(self) -> int:
        """kill -9 one of the server's worker processes (uvicorn starts a new one); its pid."""
        parent = self.processes["serve"].pid
        children = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
        victim = int(children[-1])
        os.kill(victim, signal.SIGKILL)
        return victim

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/health/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{(self.home / f'{name}.log').read_text()[-3000:]}")
            time.sleep(0.3)
        raise RuntimeError(
            f"the server did not become ready:\n{(self.home / 'serve.log').read_text()[-3000:]}"
        )

    # -- the broker and the database ------------------------------------------------------

    def start_redis(self) -> None:
        subprocess.run(
            [
                "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(self.redis_port),
                "--save", "", "--appendonly", "yes", "--dir", str(self.home),
                "--pidfile", str(self.home / "redis.pid"), "--logfile", str(self.home / "redis.log"),
            ],
            check=True,
        )  # fmt: skip
        for _ in range(50):
            if (
                subprocess.run(
                    ["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True
                ).returncode
                == 0
            ):
                return
            time.sleep(0.1)
        raise RuntimeError("redis did not start")

    def stop_redis(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "shutdown", "nosave"], capture_output=True)

    def redis_info(self) -> dict[str, str]:
        out = subprocess.run(
            ["redis-cli", "-p", str(self.redis_port), "info"], capture_output=True, text=True
        ).stdout
        return dict(line.split(":", 1) for line in out.splitlines() if ":" in line)

    def restart_postgres(self) -> None:
        """Restart the PostgreSQL server itself (every connection drops)."""
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            check=True,
            capture_output=True,
        )

    def sql(self, statement: str) -> str:
        """Run SQL in the deployment's database; its output, one row per line."""
        return psql(statement, self.database_url)

    def database_stats(self) -> dict[str, int]:
        row = psql(
            "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, blks_hit, blks_read "
            f"FROM pg_stat_database WHERE datname = '{self.database}'"
        )
        names = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "blks_hit", "blks_read")
        return dict(zip(names, (int(value) for value in row.split("|")), strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()
    with Deployment(web_workers=args.web_workers) as deployment:
        print(f"Formflow on {deployment.base} (admin / formflow); logs in {deployment.home}; Ctrl-C stops it")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
