#!/usr/bin/env python3
"""Apply router flags to a Dynamo 1.6.1 DynamoGraphDeployment with kubectl (stdlib only).

Used by configs/deployment-kubernetes.yaml; each command runs to completion:

  kubectl_dgd.py set-frontend-args --name DGD [--namespace NS] [--component Frontend]
                 [--timeout 600s] -- ARG...
      Sets the Frontend's `main` container args to exactly ARG... (e.g. `-m dynamo.frontend`
      followed by the router flags), then waits until the operator has observed the change
      and the DGD is Ready again.
  kubectl_dgd.py restart-workers --name DGD [--namespace NS] --component worker
                 [--component ...] [--timeout 600s]
      Deletes the pods of the named components (cold KV caches) and waits until their
      replacements are Ready.

Field paths (nvidia.com/v1beta1, as Dynamo 1.6.1's own planner and profiler use them):
`spec.components[i].name`, `spec.components[i].podTemplate.spec.containers[j]` with
`name: main` and its `args`; `metadata.generation`, `status.observedGeneration`, the
`Ready` condition; pod labels `nvidia.com/dynamo-graph-deployment-name` and
`nvidia.com/dynamo-component`. `spec.components` is a list keyed by name, so the patch
is an RFC 6902 JSON patch by index, guarded by `test` operations on the names (a
reordered list makes the API server reject it instead of patching the wrong component).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

RESOURCE = "dynamographdeployment"
MAIN_CONTAINER = "main"
DGD_LABEL = "nvidia.com/dynamo-graph-deployment-name"
COMPONENT_LABEL = "nvidia.com/dynamo-component"
RETRY_INTERVAL_S = 1.0


def kubectl(namespace: str | None, *args: str) -> str:
    """Run `kubectl [-n NS] ARGS...`; its stdout. Exits with kubectl's stderr on failure."""
    argv = ["kubectl", *(["--namespace", namespace] if namespace else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"kubectl_dgd: {' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def frontend_args_patch(dgd: dict, component: str, args: list[str]) -> list[dict]:
    """The JSON patch that sets `component`'s main container args to `args`."""
    components = dgd.get("spec", {}).get("components") or []
    names = [c.get("name") for c in components]
    if component not in names:
        sys.exit(f"kubectl_dgd: no component {component!r} in spec.components {names}")
    i = names.index(component)
    containers = components[i].get("podTemplate", {}).get("spec", {}).get("containers") or []
    container_names = [c.get("name") for c in containers]
    if MAIN_CONTAINER not in container_names:
        sys.exit(f"kubectl_dgd: component {component!r} has no {MAIN_CONTAINER!r} container")
    j = container_names.index(MAIN_CONTAINER)
    container = f"/spec/components/{i}/podTemplate/spec/containers/{j}"
    return [
        {"op": "test", "path": f"/spec/components/{i}/name", "value": component},
        {"op": "test", "path": f"{container}/name", "value": MAIN_CONTAINER},
        {"op": "add", "path": f"{container}/args", "value": args},
    ]


def set_frontend_args(opts: argparse.Namespace) -> None:
    ns, name, timeout = opts.namespace, opts.name, f"--timeout={opts.timeout}"
    dgd = json.loads(kubectl(ns, "get", RESOURCE, name, "--output=json"))
    patch = frontend_args_patch(dgd, opts.component[0], opts.args)
    generation = kubectl(
        ns,
        "patch",
        RESOURCE,
        name,
        "--type=json",
        f"--patch={json.dumps(patch)}",
        "--output=jsonpath={.metadata.generation}",
    ).strip()
    # Ready alone may still describe the previous generation: first wait for the operator
    # to observe this one, then for Ready.
    kubectl(
        ns,
        "wait",
        f"{RESOURCE}/{name}",
        f"--for=jsonpath={{.status.observedGeneration}}={generation}",
        timeout,
    )
    kubectl(ns, "wait", f"{RESOURCE}/{name}", "--for=condition=Ready", timeout)


def restart_workers(opts: argparse.Namespace) -> None:
    ns, timeout = opts.namespace, f"--timeout={opts.timeout}"
    selector = f"{DGD_LABEL}={opts.name},{COMPONENT_LABEL} in ({','.join(opts.component)})"
    kubectl(ns, "delete", "pod", f"--selector={selector}", "--wait=true", timeout)
    # The replacements appear a moment after the deletion: `kubectl wait` fails while no
    # pod matches, so retry until the deadline.
    deadline = time.monotonic() + parse_seconds(opts.timeout)
    while True:
        argv = ["kubectl", *(["--namespace", ns] if ns else [])]
        argv += ["wait", "pod", f"--selector={selector}", "--for=condition=Ready", timeout]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return
        if "no matching resources" not in done.stderr or time.monotonic() > deadline:
            sys.exit(f"kubectl_dgd: {' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
        time.sleep(RETRY_INTERVAL_S)


def parse_seconds(duration: str) -> float:
    """`600s`, `10m` or `1h` (kubectl's --timeout forms used here) in seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    if duration[-1:] in units:
        return float(duration[:-1]) * units[duration[-1]]
    return float(duration)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("set-frontend-args", "restart-workers"):
        p = sub.add_parser(command)
        p.add_argument("--name", required=True, help="the DynamoGraphDeployment")
        p.add_argument("--namespace", default=None, help="kubectl's current one if omitted")
        p.add_argument("--timeout", default="600s", help="per kubectl wait (600s, 10m)")
        p.add_argument("--component", action="append", help="spec.components[].name")
    sub.choices["set-frontend-args"].add_argument("args", nargs="*", help="after --")
    opts = parser.parse_args(argv)
    if not opts.component:
        opts.component = ["Frontend"] if opts.command == "set-frontend-args" else None
        if opts.component is None:
            parser.error("restart-workers needs --component (the worker components' names)")
    if opts.command == "set-frontend-args":
        set_frontend_args(opts)
    else:
        restart_workers(opts)


if __name__ == "__main__":
    main()
