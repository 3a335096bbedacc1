"""`dynamo-tune stack up | status`. Does I/O: runs the local Dynamo stack in the foreground.

`stack up` starts the stack (N mocker workers, frontend, Prometheus when available), prints
its endpoints (`--json`: one JSON line), records them in a state file, and runs until Ctrl-C
or SIGTERM, then stops every process it started. A component that dies ends it with exit 1
and the component's log tail. `stack status` checks the stack recorded in the state file.
`--request-trace FILE` makes the frontend append Dynamo's request trace to FILE (a capture
that `dynamo-tune trace summarize FILE` reads).
Router knobs use the frontend's own flag names (from `router_flags.FLAG_TABLE`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import ValidationError

from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.local_commands import frontend_router_args
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.router_flags import FLAG_TABLE
from dynamo_tune.deploy.spec import LocalDeploymentSpec, MockerSpec
from dynamo_tune.deploy.stack_state import StackState, check, default_state_file
from dynamo_tune.errors import DeploymentError
from dynamo_tune.validation import spec_error

HEALTH_POLL_S = 1.0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `stack up` and `stack status` to `sub`."""
    stack = sub.add_parser("stack", help="Run or check the local Dynamo stack.")
    commands = stack.add_subparsers(dest="stack_command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="Run the local stack in the foreground until Ctrl-C.",
        description="Start the local Dynamo stack (mocker workers, the frontend with the "
        "router flags given below, Prometheus when available) on 127.0.0.1, print its "
        "endpoints, record them in the state file, and run in the foreground until Ctrl-C or "
        "SIGTERM, then stop every process it started.",
    )
    up.add_argument("--workers", type=int, default=LocalDeploymentSpec().workers)
    up.add_argument("--speedup-ratio", type=float, default=MockerSpec().speedup_ratio)
    up.add_argument("--block-size", type=int, default=MockerSpec().block_size)
    up.add_argument("--num-gpu-blocks", type=int, default=MockerSpec().num_gpu_blocks)
    up.add_argument(
        "--prometheus",
        choices=("auto", "on", "off"),
        default="auto",
        help="auto: start Prometheus when the binary is on PATH",
    )
    up.add_argument("--run-dir", type=Path, default=None, help="Logs and data (default: temp)")
    up.add_argument(
        "--request-trace",
        type=Path,
        default=None,
        metavar="FILE",
        help="Capture: the frontend appends Dynamo's request trace (JSONL) to FILE",
    )
    up.add_argument("--json", action="store_true", help="Print the endpoints as one JSON line")
    _add_state_file(up)
    knobs = up.add_argument_group("router (the frontend's flags; unset = Dynamo's default)")
    for rule in FLAG_TABLE:
        if rule.field == "block_size":
            continue  # the workers' --block-size
        help_text = RouterConfig.model_fields[rule.field].description
        choices = literal_choices(rule.field)
        if rule.field == "mode":
            help_text = "The router (default here: kv)"
        if rule.negatable:
            action: Any = argparse.BooleanOptionalAction
            knobs.add_argument(
                rule.flag, dest=rule.field, action=action, default=None, help=help_text
            )
        else:
            metavar = "{" + ",".join(choices) + "}" if choices else "V"  # checked by pydantic
            knobs.add_argument(
                rule.flag, dest=rule.field, default=None, metavar=metavar, help=help_text
            )
    up.set_defaults(func=_up)

    status = commands.add_parser(
        "status",
        help="Check the stack that `stack up` runs.",
        description="Check the stack recorded in the state file that `stack up` writes: its "
        "processes are alive, the frontend serves the model with every worker, Prometheus (if "
        "any) is ready. Exit 0 when healthy, 1 listing the problems otherwise.",
    )
    status.add_argument("--json", action="store_true", help="Print the result as one JSON line")
    _add_state_file(status)
    status.set_defaults(func=_status)


def literal_choices(field: str) -> tuple[str, ...] | None:
    """The values a `RouterConfig` field of a `Literal` type takes (`mode`: every router mode),
    in the type's order; None for any other field."""
    annotation = RouterConfig.model_fields[field].annotation
    for candidate in (annotation, *get_args(annotation)):
        if get_origin(candidate) is Literal:
            return tuple(str(value) for value in get_args(candidate))
    return None


def _add_state_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help=f"Where `stack up` records its endpoints (default: {default_state_file()})",
    )


def build_spec(args: argparse.Namespace) -> LocalDeploymentSpec:
    """The stack spec from `stack up` arguments; `SpecError` names a bad value."""
    knobs = {r.field: getattr(args, r.field) for r in FLAG_TABLE if r.field != "block_size"}
    knobs = {k: v for k, v in knobs.items() if v is not None}
    knobs.setdefault("mode", "kv")
    prometheus: bool | Literal["auto"] = (
        "auto" if args.prometheus == "auto" else args.prometheus == "on"
    )
    try:
        return LocalDeploymentSpec(
            workers=args.workers,
            mocker=MockerSpec(
                speedup_ratio=args.speedup_ratio,
                block_size=args.block_size,
                num_gpu_blocks=args.num_gpu_blocks,
            ),
            router=RouterConfig(**knobs),
            prometheus=prometheus,
            run_dir=args.run_dir,
            request_trace=args.request_trace,
            isolation="none",
        )
    except ValidationError as exc:
        raise spec_error(exc, prefix="invalid stack option: ") from None


def _up(args: argparse.Namespace) -> int:
    spec = build_spec(args)
    state_file = args.state_file or default_state_file()
    return asyncio.run(_serve(LocalStack(spec), state_file, as_json=args.json))


async def _serve(stack: LocalStack, state_file: Path, as_json: bool) -> int:
    """Start, announce, watch until a signal; always stop. Returns the exit code."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        starting = asyncio.ensure_future(stack.start())
        signalled = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({starting, signalled}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()  # start() stops what it has started
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return 0
        signalled.cancel()
        starting.result()  # raises DeploymentError if the stack could not start
        flags = frontend_router_args(stack.router, stack.spec.block_size)
        state = StackState.of(stack, flags)
        state.write(state_file)
        _announce(state, state_file, as_json, stack.request_trace)
        while not stopping.is_set():
            stack.check_alive()  # a dead component ends `stack up` with its log tail
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), HEALTH_POLL_S)
        return 0
    finally:
        await stack.stop()
        with contextlib.suppress(DeploymentError, FileNotFoundError):
            if StackState.read(state_file).pids.get("dynamo-tune") == os.getpid():
                state_file.unlink()  # only our own record
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        print("dynamo-tune: local stack stopped", file=sys.stderr)


def _announce(
    state: StackState, state_file: Path, as_json: bool, request_trace: Path | None
) -> None:
    trace = None if request_trace is None else str(request_trace)
    if as_json:
        extra = {"state_file": str(state_file), "request_trace": trace}
        print(json.dumps({**state.model_dump(), **extra}), flush=True)
        return
    lines = [
        f"local Dynamo stack ready: {state.workers} mocker workers, {' '.join(state.router_flags)}",
        f"  frontend    {state.frontend_url}   (model {state.model!r})",
        *(f"  metrics     {url}" for url in state.metrics_urls),
        f"  prometheus  {state.prometheus_url or 'none — ' + state.notice}",
        f"  run dir     {state.run_dir}",
        *([f"  trace       {trace} (appending)"] if trace else []),
        f"  state file  {state_file}",
        "Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)


def _status(args: argparse.Namespace) -> int:
    state_file = args.state_file or default_state_file()
    state = StackState.read(state_file)
    problems = asyncio.run(check(state))
    if args.json:
        print(json.dumps({"healthy": not problems, "problems": problems, **state.model_dump()}))
    elif problems:
        print("local stack UNHEALTHY:\n" + "\n".join(f"  {p}" for p in problems))
    else:
        print(f"local stack healthy: {state.frontend_url} ({state.workers} workers)")
    return 1 if problems else 0
