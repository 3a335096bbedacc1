"""Loopback helpers: free ports and URL building. Does I/O: binds sockets briefly."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def loopback_url(port: int, path: str = "") -> str:
    """`http://127.0.0.1:<port><path>`."""
    return f"http://{LOOPBACK}:{port}{path}"
