"""Bind audit: every socket the local stack listens on is on the loopback interface.

Listening sockets are read from /proc: a process's `fd/` links `socket:[inode]` to the
rows of `net/tcp` and `net/tcp6` (state 0A = LISTEN). Every process the stack starts is
audited — frontend, mocker workers, Prometheus, the zmq event-plane broker — and their
descendants. Without the broker, Dynamo 1.6.1's direct-mode zmq publishers bind
`tcp://0.0.0.0:0` (4 sockets per mocker worker); see `dynamo_tune.deploy.local_commands`.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest
from local_stack_helpers import events_applied, wait_events_applied_above

from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.local_commands import (
    ZMQ_BROKER,
    dynamo_env,
    zmq_broker_argv,
    zmq_broker_url,
)
from dynamo_tune.net import free_port
from dynamo_tune.process import ManagedProcess
from dynamo_tune.vocab import text

LISTEN = "0A"


def _address(hex_ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/tcp{,6} writes it (32-bit words in host byte order)."""
    raw = bytes.fromhex(hex_ip)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(words)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket `pid` holds in the LISTEN state."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for row in path.read_text().splitlines()[1:]:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == LISTEN and inode in inodes:
                hex_ip, hex_port = local.split(":")
                found.append((str(_address(hex_ip)), int(hex_port, 16)))
    return sorted(found)


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, grandchildren, ...)."""
    parent_of = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            content = stat.read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, ...
        ppid = int(content[content.rindex(")") + 2 :].split()[1])
        parent_of[int(stat.parent.name)] = ppid
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = [child for child, parent in parent_of.items() if parent in frontier]
        found += children
        frontier = children
    return found


def test_proc_parsing_finds_a_known_listener() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert ("127.0.0.1", port) in listening_sockets(os.getpid())
    assert ("127.0.0.1", port) not in listening_sockets(os.getpid())


def test_broker_mode_environment(tmp_path: Path) -> None:
    url = zmq_broker_url(5001, 5002)
    assert url == "xsub=tcp://127.0.0.1:5001 , xpub=tcp://127.0.0.1:5002"
    inherited = {"DYN_ZMQ_BROKER_URL": "xsub=tcp://10.0.0.1:1 , xpub=tcp://10.0.0.1:2"}
    assert dynamo_env(inherited, tmp_path, zmq_broker=url)["DYN_ZMQ_BROKER_URL"] == url
    assert "DYN_ZMQ_BROKER_URL" not in dynamo_env(inherited, tmp_path)
    argv = zmq_broker_argv("python3", 5001, 5002)
    assert argv[:2] == ["python3", "-c"]
    assert argv[3:] == ["tcp://127.0.0.1:5001", "tcp://127.0.0.1:5002"]


@pytest.mark.integration
def test_broker_listens_on_its_two_loopback_ports_only(tmp_path: Path) -> None:
    xsub, xpub = free_port(), free_port()
    broker = ManagedProcess(
        ZMQ_BROKER, zmq_broker_argv(sys.executable, xsub, xpub), tmp_path / "broker.log"
    )
    broker.start()
    try:
        assert broker.pid is not None
        deadline = time.monotonic() + 10
        while len(sockets := listening_sockets(broker.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sockets == sorted([("127.0.0.1", xsub), ("127.0.0.1", xpub)])
    finally:
        broker.stop(0.0)


def _non_loopback(stack: LocalStack) -> dict[str, list[tuple[str, int]]]:
    """Component (or `component/child-pid`) -> its listening sockets off loopback."""
    offenders: dict[str, list[tuple[str, int]]] = {}
    for name, pid in stack.pids().items():
        for who, each in [(name, pid), *((f"{name}/{c}", c) for c in descendants(pid))]:
            bad = [s for s in listening_sockets(each) if not ipaddress.ip_address(s[0]).is_loopback]
            if bad:
                offenders[who] = bad
    return offenders


STORED_OK = {"event_type": "stored", "status": "ok"}


async def _stored_events_applied(frontend_url: str, model: str) -> tuple[float, float]:
    """`dynamo_component_kv_cache_events_applied{event_type="stored",status="ok"}` summed,
    before one chat request and once it has risen after it (polled, 10 s at most: events
    travel worker -> broker -> router asynchronously)."""
    metrics_url = f"{frontend_url}/metrics"
    async with httpx.AsyncClient(timeout=30) as client:
        before = await events_applied(client, metrics_url, STORED_OK)
        body = {
            "model": model,
            "messages": [{"role": "user", "content": text(range(3000, 3200))}],
            "max_tokens": 2,
        }
        response = await client.post(f"{frontend_url}/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        after = await wait_events_applied_above(client, metrics_url, before, STORED_OK)
    return before, after


@pytest.mark.integration
async def test_local_stack_listens_on_loopback_only(local_stack: LocalStack) -> None:
    pids = local_stack.pids()
    assert {"frontend", "worker-0", "worker-1", "prometheus", ZMQ_BROKER} <= set(pids), pids
    frontend_port = int(local_stack.frontend_url.rsplit(":", 1)[1])
    assert ("127.0.0.1", frontend_port) in listening_sockets(pids["frontend"])
    assert _non_loopback(local_stack) == {}
    # The event plane still works through the broker: the router applies a request's KV events.
    endpoints = local_stack.endpoints()
    before, after = await _stored_events_applied(endpoints.frontend_url, endpoints.model)
    assert after > before
