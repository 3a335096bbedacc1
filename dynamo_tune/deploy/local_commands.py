"""Environment and argv of the local Dynamo processes (docs/architecture.md#local-stack). Pure.

Every process gets file discovery in the run dir, the tcp request plane, the zmq event plane
and the four host variables that keep Dynamo on 127.0.0.1 (without them it advertises the
machine's external address). Workers expose `/metrics` on their own `DYN_SYSTEM_PORT`;
Dynamo 1.6.1 reads that variable as a signed 16-bit integer, so it must be <= 32767.

The zmq event plane has two modes in Dynamo 1.6.1 (lib/runtime/src/transports/event_plane/
mod.rs, `EventPublisher::new_internal`). Direct mode, the default, binds every publisher to
`tcp://0.0.0.0:0` — hard-coded; `DYN_EVENT_PLANE_HOST` only changes the address advertised
in discovery — so each mocker worker listens on 4 sockets on all interfaces. Broker mode
(`DYN_ZMQ_BROKER_URL=xsub=<url> , xpub=<url>`) makes publishers connect to a broker's XSUB
socket and subscribers to its XPUB socket, so no Dynamo process binds a publisher at all.
The local stack runs that broker (`zmq_broker_argv`, bound to 127.0.0.1) and passes its URL
to every Dynamo process (`dynamo_env(..., zmq_broker=...)`).

A request-trace capture (`request_trace_env`) turns on the frontend's own trace sink: one
`dynamo.request.trace.v1` line per finished request, plain JSONL, appended to one file.
Dynamo 1.6.1's `jsonl` sink opens the file for appending, so a restarted frontend keeps the
earlier records; it buffers up to 1 s and flushes on SIGTERM, never on SIGKILL
(docs/architecture.md#local-stack).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.router_flags import router_flags
from dynamo_tune.deploy.spec import FrontendBuckets, MockerSpec
from dynamo_tune.net import LOOPBACK

MAX_SYSTEM_PORT = 32767

LOOPBACK_HOST_VARS = (
    "DYN_TCP_RPC_HOST",
    "DYN_EVENT_PLANE_HOST",
    "DYN_TCP_RESPONSE_STREAM_HOST",
    "DYN_SYSTEM_HOST",
)

# Discovery in the run dir (DYN_FILE_KV), tcp request plane, zmq event plane.
PLANE_ARGS = ("--discovery-backend", "file", "--request-plane", "tcp", "--event-plane", "zmq")

# Inherited variables that would change what the stack does (router knobs, ports, planes).
_DROP_PREFIXES = ("DYN_", "ETCD_", "NATS_")


ZMQ_BROKER = "zmq-broker"
"""The component name of the local stack's event-plane broker."""

# An XSUB/XPUB forwarder (pyzmq is a dependency of ai-dynamo 1.6.1). argv: XSUB and XPUB
# endpoints. SIGTERM ends it (Python's default action); it holds no state worth saving.
_ZMQ_BROKER_PROGRAM = """\
import sys
import zmq

ctx = zmq.Context()
xsub = ctx.socket(zmq.XSUB)
xsub.bind(sys.argv[1])
xpub = ctx.socket(zmq.XPUB)
xpub.bind(sys.argv[2])
zmq.proxy(xsub, xpub)
"""


def _loopback_tcp(port: int) -> str:
    return f"tcp://{LOOPBACK}:{port}"


def zmq_broker_argv(python: str, xsub_port: int, xpub_port: int) -> list[str]:
    """The event-plane broker on 127.0.0.1: publishers connect to `xsub_port`,
    subscribers to `xpub_port`."""
    return [python, "-c", _ZMQ_BROKER_PROGRAM, _loopback_tcp(xsub_port), _loopback_tcp(xpub_port)]


def zmq_broker_url(xsub_port: int, xpub_port: int) -> str:
    """`DYN_ZMQ_BROKER_URL` for the broker of `zmq_broker_argv` (Dynamo's `parse_broker_url`
    format: `xsub=<urls> , xpub=<urls>`, urls separated by `;`)."""
    return f"xsub={_loopback_tcp(xsub_port)} , xpub={_loopback_tcp(xpub_port)}"


def dynamo_env(
    base: Mapping[str, str], discovery_dir: Path, zmq_broker: str | None = None
) -> dict[str, str]:
    """The environment shared by every local Dynamo process.

    `zmq_broker` (a `zmq_broker_url`) selects the event plane's broker mode; without it
    Dynamo's publishers bind 0.0.0.0 (see the module docstring).
    """
    env = {k: v for k, v in base.items() if not k.startswith(_DROP_PREFIXES)}
    env.update(
        {
            "DYN_DISCOVERY_BACKEND": "file",
            "DYN_FILE_KV": str(discovery_dir),
            "DYN_REQUEST_PLANE": "tcp",
            "DYN_EVENT_PLANE": "zmq",
            "HF_HUB_OFFLINE": "1",
            "DYN_LOG": "warn",
        }
    )
    env.update({name: LOOPBACK for name in LOOPBACK_HOST_VARS})
    if zmq_broker is not None:
        env["DYN_ZMQ_BROKER_URL"] = zmq_broker
    return env


def worker_env(base: Mapping[str, str], system_port: int) -> dict[str, str]:
    """A worker's environment: `base` plus its own metrics port."""
    if not 0 < system_port <= MAX_SYSTEM_PORT:
        raise ValueError(
            f"`0 < system_port <= {MAX_SYSTEM_PORT}` must hold, but got {system_port=}."
        )
    return {**base, "DYN_SYSTEM_PORT": str(system_port)}


def request_trace_env(path: Path) -> dict[str, str]:
    """The variables that make a Dynamo 1.6.1 frontend append its request trace to `path`:
    the trace on, the `jsonl` sink (a plain file, not gzip'd segments) at `path`."""
    return {
        "DYN_REQUEST_TRACE": "1",
        "DYN_REQUEST_TRACE_SINKS": "jsonl",
        "DYN_REQUEST_TRACE_OUTPUT_PATH": str(path),
        "DYN_REQUEST_TRACE_FILE_FORMAT": "jsonl",
    }


def frontend_env(
    base: Mapping[str, str], buckets: FrontendBuckets, request_trace: Path | None = None
) -> dict[str, str]:
    """The frontend's environment: `base` plus its histogram bucket layout and, with
    `request_trace` (an absolute file path), the request-trace capture."""
    env = {
        **base,
        "DYN_METRICS_TTFT_MIN": repr(buckets.ttft_min),
        "DYN_METRICS_TTFT_MAX": repr(buckets.ttft_max),
        "DYN_METRICS_TTFT_COUNT": str(buckets.ttft_count),
        "DYN_METRICS_ITL_MIN": repr(buckets.itl_min),
        "DYN_METRICS_ITL_MAX": repr(buckets.itl_max),
        "DYN_METRICS_ITL_COUNT": str(buckets.itl_count),
    }
    if request_trace is not None:
        env.update(request_trace_env(request_trace))
    return env


def worker_argv(
    python: str, model_dir: Path, model_name: str, mocker: MockerSpec, block_size: int
) -> list[str]:
    """`python -m dynamo.mocker ...` for one worker (one engine per process)."""
    argv = [
        python,
        "-m",
        "dynamo.mocker",
        "--model-path",
        str(model_dir),
        "--model-name",
        model_name,
        *PLANE_ARGS,
        "--num-workers",
        "1",
        "--speedup-ratio",
        repr(mocker.speedup_ratio),
        "--block-size",
        str(block_size),
        "--num-gpu-blocks-override",
        str(mocker.num_gpu_blocks),
    ]
    if mocker.max_num_seqs is not None:
        argv += ["--max-num-seqs", str(mocker.max_num_seqs)]
    if mocker.max_num_batched_tokens is not None:
        argv += ["--max-num-batched-tokens", str(mocker.max_num_batched_tokens)]
    if not mocker.enable_prefix_caching:
        argv.append("--no-enable-prefix-caching")
    return argv + list(mocker.extra_args)


def frontend_router_args(router: RouterConfig, block_size: int) -> list[str]:
    """The frontend's router flags; the block size always matches the workers'."""
    return router_flags(router.model_copy(update={"block_size": block_size}))


def frontend_argv(python: str, http_port: int, router: RouterConfig, block_size: int) -> list[str]:
    """`python -m dynamo.frontend ...` on 127.0.0.1:`http_port` with the router flags."""
    return [
        python,
        "-m",
        "dynamo.frontend",
        "--http-host",
        LOOPBACK,
        "--http-port",
        str(http_port),
        *PLANE_ARGS,
        *frontend_router_args(router, block_size),
    ]
