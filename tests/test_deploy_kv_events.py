"""Is the KV router's signal alive? A study on the real local stack, with and without KV events.

Workers whose KV events never reach the router make `--router-mode kv` route on load alone
(ai-dynamo/dynamo#12319, #5565). Reproduced here by giving the workers (only) an event plane
the frontend does not listen on: `DYN_ZMQ_BROKER_ENABLED` with a ZMQ broker URL nobody serves,
so each worker publishes its KV events to a broker that does not exist while the frontend
subscribes to the workers directly. The workers still cache prefixes (client KVE stays > 0)
and the router reports nothing wrong (its `kv_event_source_mismatch_workers` gauge stays 0);
only `dynamo_component_kv_cache_events_applied` staying flat shows it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from fakes import write_study
from local_stack_helpers import LOCAL, TINY_WORKLOAD
from study_helpers import open_study

from dynamo_tune.cli.run_output import TextReporter
from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.spec import LocalDeploymentSpec
from dynamo_tune.net import free_port
from dynamo_tune.study import run_study_file
from dynamo_tune.study.run.services import build_services
from dynamo_tune.study.store.opening import StudyHandle
from dynamo_tune.study.trial.objective import TrialServices
from dynamo_tune.study.trial.outcome import NO_KV_EVENTS, NO_KV_EVENTS_WARNING

pytestmark = pytest.mark.integration


def _unreachable_event_plane() -> dict[str, str]:
    """Worker environment: publish KV events through a ZMQ broker that nobody runs."""
    xsub, xpub = free_port(), free_port()
    return {
        "DYN_ZMQ_BROKER_ENABLED": "true",
        "DYN_ZMQ_BROKER_URL": f"xsub=tcp://127.0.0.1:{xsub} , xpub=tcp://127.0.0.1:{xpub}",
    }


@pytest.mark.parametrize("events_reach_router", [True, False], ids=["normal", "no-events"])
def test_kv_trials_without_kv_events_are_named(tmp_path: Path, events_reach_router: bool) -> None:
    path = write_study(
        tmp_path,
        {
            "study.name": "kv-signal",
            "study.storage": "sqlite:///kv.db",
            "study.n_trials": 2,
            "study.enqueue": [{"router.mode": "kv"}],  # baseline round-robin, then kv
            "deployment": dict(LOCAL, run_dir=str(tmp_path / "stack"), isolation="none"),
            "workload": TINY_WORKLOAD,
            "search_space": {
                "router.mode": {"type": "categorical", "choices": ["kv", "round-robin"]},
            },
        },
    )
    extra = {} if events_reach_router else _unreachable_event_plane()

    def services_for(handle: StudyHandle) -> TrialServices:
        services = build_services(handle)
        spec = handle.loaded.spec.deployment
        assert isinstance(spec, LocalDeploymentSpec)
        services.deployment = LocalStack(spec, worker_env_extra=extra)
        return services

    out = io.StringIO()
    run_study_file(path, services_for, report=TextReporter(out))
    baseline, kv = open_study(path).get_trials()
    assert (baseline.params["router.mode"], kv.params["router.mode"]) == ("round-robin", "kv")
    for t in (baseline, kv):
        assert t.state.name == "COMPLETE"
        assert t.user_attrs["kve_ceiling"] > 0 and t.user_attrs["requests_failed"] == 0
    assert NO_KV_EVENTS not in baseline.user_attrs["violations"]
    attrs: dict[str, Any] = kv.user_attrs
    assert attrs["client_kve"] > 0  # the workers cache either way
    if events_reach_router:
        assert attrs["router_kv_events_rate"] > 0 and attrs["router_kv_hit_rate_mean"] > 0
        assert NO_KV_EVENTS not in attrs["violations"]
        assert NO_KV_EVENTS_WARNING not in out.getvalue()
    else:
        # the router's own overlap estimate is no evidence here: with no events it assumes
        # the blocks it routed are cached (Dynamo's router_assume_kv_reuse; measured 0.97 with
        # the event-plane broker of the local stack); applied events are
        assert attrs["router_kv_events_rate"] == 0
        assert attrs["violations"] == [NO_KV_EVENTS] and attrs["feasible"] is False
        assert out.getvalue().count(f"warning: {NO_KV_EVENTS_WARNING}") == 1
