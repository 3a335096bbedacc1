"""Free loopback ports below a limit. Does I/O: binds sockets briefly.

The OS hands out ephemeral ports from 32768 up, but Dynamo 1.6.1 parses `DYN_SYSTEM_PORT` as
a signed 16-bit integer: worker metrics ports are picked at random in [20000, 32767] and
checked free by binding them.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Collection

from dynamo_tune.errors import DeploymentError
from dynamo_tune.net import LOOPBACK

LOW_PORT_RANGE = (20000, 32767)


def is_free(port: int) -> bool:
    """True if 127.0.0.1:`port` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_low_port(exclude: Collection[int] = (), attempts: int = 200) -> int:
    """A free port in `LOW_PORT_RANGE`, not in `exclude`."""
    low, high = LOW_PORT_RANGE
    for _ in range(attempts):
        port = random.randint(low, high)
        if port not in exclude and is_free(port):
            return port
    raise DeploymentError(f"no free loopback port found in {low}-{high}")
