"""Test helpers: real Dask scheduler/worker processes, ports, and the snhoo-dask CLI.

A plain module rather than conftest.py, so tests import it by one unambiguous name."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


@dataclass
class DaskProcesses:
    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen]
    log_dir: str

    def stop(self) -> None:
        for p in self.workers + [self.scheduler]:
            if p.poll() is None:
                p.terminate()
        for p in self.workers + [self.scheduler]:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start_dask(tmp_path, n_workers: int = 2, worker_env: dict | None = None) -> DaskProcesses:
    """A real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    log_dir = os.path.join(tmp_path, "dask-logs")
    os.makedirs(log_dir, exist_ok=True)
    sched = subprocess.Popen(
        ["dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(log_dir, "scheduler.log"), "wb"),
    )
    wait_for_port(port)
    env = dict(os.environ, **(worker_env or {}))
    workers = []
    for i in range(n_workers):
        workers.append(
            subprocess.Popen(
                [
                    "dask",
                    "worker",
                    address,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--name",
                    f"w{i}",
                    "--host",
                    "127.0.0.1",
                    "--no-dashboard",
                    "--local-directory",
                    os.path.join(tmp_path, f"w{i}"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(log_dir, f"worker{i}.log"), "wb"),
                env=env,
            )
        )
    procs = DaskProcesses(address, sched, workers, log_dir)
    from distributed import Client

    with Client(address, timeout=30) as c:
        c.wait_for_workers(n_workers, timeout=60)
    return procs


def run_cli(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run the installed ``snhoo-dask`` command as a user would."""
    return subprocess.run(["snhoo-dask", *args], capture_output=True, text=True, timeout=timeout, **kwargs)
