"""Fixtures for the end-to-end tests of the generated Python SDK (`sigil_client`, built by scripts/gen-sdk).

A real `sigil serve` runs over HTTPS on an ephemeral port with a fresh data directory; the SDK
trusts the server's development CA (DATA/tls/ca.pem). TLS verification is never disabled.
Env: SIGIL_BIN (default target/debug/sigil, relative to the repository root).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import sigil_client

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT = 60.0  # a debug build on a busy 2-core machine


@dataclass
class Server:
    url: str
    ca: str
    bootstrap_token: str
    data: Path


def _binary() -> Path:
    path = Path(os.environ.get("SIGIL_BIN", "target/debug/sigil"))
    if not path.is_absolute():
        path = ROOT / path
    deadline = time.monotonic() + START_TIMEOUT  # it may be mid-rebuild: wait for it to reappear
    while not (path.is_file() and os.access(path, os.X_OK)):
        if time.monotonic() > deadline:
            pytest.fail(f"no sigil binary at {path} (set SIGIL_BIN, or build it: cargo build)")
        time.sleep(0.5)
    return path


def _serve(extra_env: dict[str, str] | None = None):
    """Runs one `sigil serve` for as long as the generator is suspended at its yield."""
    tmp = Path(tempfile.mkdtemp(prefix="sigil-sdk-e2e-"))
    data = tmp / "data"
    token = "sgl_" + secrets.token_urlsafe(32)
    env = {**os.environ, "SIGIL_BOOTSTRAP_TOKEN": token, "SIGIL_LOG": os.environ.get("SIGIL_LOG", "warn"), **(extra_env or {})}
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen(
        [str(_binary()), "serve", "--data", str(data), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
    )
    ready: list[str] = []

    def read_stdout():  # keep draining stdout so the server never blocks on a full pipe
        for raw in proc.stdout:
            m = re.search(rb"listening on (https://\S+)", raw)
            if m and not ready:
                ready.append(m.group(1).decode())

    threading.Thread(target=read_stdout, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while not ready:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail(f"sigil did not start (exit {proc.poll()}):\n{(tmp / 'server.log').read_text()[-4000:]}")
        time.sleep(0.05)
    ca = data / "tls" / "ca.pem"
    assert ca.is_file(), "the dev CA should exist once the server listens"
    try:
        yield Server(url=ready[0], ca=str(ca), bootstrap_token=token, data=data)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if os.environ.get("SIGIL_KEEP_DATA"):
            print(f"sigil data and log kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def server():
    yield from _serve()


class Clock:
    """The clock of a debug `sigil serve` (SIGIL_TEST_CLOCK_FILE): it stands where a test puts it."""

    def __init__(self, path: Path, at: str):
        self.path = path
        self.set(at)

    def set(self, at: str) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(at)
        os.replace(tmp, self.path)  # atomic: the server never reads half of it


@pytest.fixture(scope="module")
def clocked():
    """A second server on a test clock, for expiry; yields (server, clock)."""
    d = Path(tempfile.mkdtemp(prefix="sigil-sdk-clock-"))
    clock = Clock(d / "now", "2026-06-03T12:00:00Z")
    for srv in _serve({"SIGIL_TEST_CLOCK_FILE": str(clock.path)}):
        yield srv, clock
    shutil.rmtree(d, ignore_errors=True)


class Sdk:
    """The generated SDK seen through one bearer token.

    `sdk.create_agent(...)` calls the operation with that operationId on whichever generated
    `*Api` class holds it (classes follow OpenAPI tags, which may move); everything else,
    models, exceptions, (de)serialisation, is the generated code itself.
    """

    def __init__(self, server: Server, token: str | None):
        conf = sigil_client.Configuration(host=server.url, access_token=token, ssl_ca_cert=server.ca)
        self.client = sigil_client.ApiClient(conf)
        self._apis = [
            getattr(sigil_client, name)(self.client)
            for name in dir(sigil_client)
            if name.endswith("Api") and isinstance(getattr(sigil_client, name), type)
        ]

    def __getattr__(self, operation: str):
        for api in self._apis:
            if hasattr(type(api), operation):
                return getattr(api, operation)
        raise AttributeError(
            f"operation {operation!r} is not in the generated SDK: is it in openapi/openapi.json? (re-run scripts/gen-sdk)"
        )


@pytest.fixture(scope="session")
def sdk_for(server):
    clients: list[Sdk] = []

    def make(token: str | None) -> Sdk:
        sdk = Sdk(server, token)
        clients.append(sdk)
        return sdk

    yield make
    for sdk in clients:
        sdk.client.rest_client.pool_manager.clear()


@pytest.fixture(scope="session")
def operator(sdk_for, server) -> Sdk:
    return sdk_for(server.bootstrap_token)


@pytest.fixture(scope="session")
def public(sdk_for) -> Sdk:
    return sdk_for(None)


@dataclass
class Tenant:
    id: str
    did: str
    admin: Sdk


@pytest.fixture(scope="session")
def tenant(operator, sdk_for) -> Tenant:
    tid = "e2e-" + uuid.uuid4().hex[:8]
    created = operator.create_tenant(sigil_client.CreateTenantRequest(id=tid, name="SDK e2e tenant"))
    assert created.id == tid
    assert created.did.startswith("did:web:") and created.did.endswith(f":tenants:{tid}")
    return Tenant(id=created.id, did=created.did, admin=sdk_for(created.admin_token))
