"""Dynamo's own names for the router knobs, shared by the tests that check them against the
installed Dynamo (`test_deploy_router_flags.py`, `test_deploy_dynamo_defaults.py`)."""

from __future__ import annotations

# RouterConfig field -> attribute of Dynamo's parsed FrontendConfig.
DYNAMO_ATTR = {
    "mode": "router_mode",
    "overlap_score_credit": "overlap_score_credit",
    "prefill_load_scale": "prefill_load_scale",
    "temperature": "router_temperature",
    "overlap_score_credit_decay": "overlap_score_credit_decay",
    "decode_active_request_weight": "decode_active_request_weight",
    "kv_events": "use_kv_events",
    "ttl_secs": "router_ttl_secs",
    "queue_threshold": "router_queue_threshold",
    "queue_policy": "router_queue_policy",
    "session_affinity_ttl_secs": "session_affinity_ttl_secs",
    "session_affinity_mode": "session_affinity_mode",
    "active_decode_blocks_threshold": "active_decode_blocks_threshold",
    "active_prefill_tokens_threshold_frac": "active_prefill_tokens_threshold_frac",
    "block_size": "kv_cache_block_size",
}
