"""`manage.py sandbox` starts both servers, prints where they are, serves, and resumes state."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(data_dir: Path, qbo_port: int, qonto_port: int) -> tuple[subprocess.Popen, list[str]]:
    """Run the command and wait for its three announcement lines."""
    env = {**os.environ, "SANDBOX_CLIENT_ID": "cmd-client", "SANDBOX_CLIENT_SECRET": "cmd-secret"}
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "sandbox",
            "--quickbooks-port",
            str(qbo_port),
            "--qonto-port",
            str(qonto_port),
            "--seed",
            "5",
            "--bills",
            "30",
            "--data",
            str(data_dir),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while len(lines) < 3 and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
    return process, lines


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_sandbox_command_serves_both_sandboxes_and_keeps_state(tmp_path):
    qbo_port, qonto_port = free_port(), free_port()
    qbo_url, qonto_url = f"http://127.0.0.1:{qbo_port}", f"http://127.0.0.1:{qonto_port}"
    process, lines = start(tmp_path, qbo_port, qonto_port)
    try:
        assert lines == [
            f"QuickBooks sandbox: {qbo_url}",
            f"Qonto sandbox: {qonto_url}",
            "OAuth client id: cmd-client / secret: cmd-secret",
        ], (lines, process.stderr.read() if process.poll() is not None else "")
        discovery = requests.get(f"{qbo_url}/.well-known/openid_configuration/", timeout=10)
        assert discovery.json()["token_endpoint"] == f"{qbo_url}/oauth2/v1/tokens/bearer"
        assert requests.get(f"{qonto_url}/_sandbox/state", timeout=10).status_code == 200
        state = requests.get(f"{qbo_url}/_sandbox/state", timeout=10).json()
        assert state["records"]["Bill"] == 30
        added = requests.post(
            f"{qbo_url}/_sandbox/mutate",
            json={"action": "add", "entity": "Bill", "count": 2},
            timeout=10,
        )
        assert added.status_code == 200
    finally:
        stop(process)
    assert (tmp_path / "quickbooks" / "seed.json").exists()

    process, lines = start(tmp_path, qbo_port, qonto_port)
    try:
        assert lines[0] == f"QuickBooks sandbox: {qbo_url}"
        state = requests.get(f"{qbo_url}/_sandbox/state", timeout=10).json()
        assert state["records"]["Bill"] == 32  # resumed, not reseeded
    finally:
        stop(process)
