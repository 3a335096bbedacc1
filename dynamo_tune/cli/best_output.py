"""What `dynamo-tune best` prints: the answer's trial(s) as flags, YAML or JSON, and its note.
Pure formatting (the caller prints).
"""

from __future__ import annotations

import json
import shlex

import yaml

from dynamo_tune.study.confirmation.verdict_text import headline
from dynamo_tune.study.read.answers import Answer, best_config, best_payload


def answer_note(ans: Answer) -> str:
    """One line saying how sure the answer is."""
    if ans.verdict is None:
        why = "--unconfirmed" if ans.requested_unconfirmed else "the study has no confirmation yet"
        raw = ans.improvement.text if ans.improvement is not None else ""
        return f"unconfirmed ({why}): {raw}".rstrip(": ")
    if ans.kind == "pareto":
        return "confirmed Pareto set: " + headline(ans.verdict)
    if ans.kind == "no_winner":
        return headline(ans.verdict) + " (`--unconfirmed` shows the raw best)"
    return headline(ans.verdict)


def best_text(ans: Answer, fmt: str) -> str:
    """The answer's trial(s) as frontend flags, router YAML or JSON ("" when there is none)."""
    best = ans.trials
    if not best:
        return ""
    if fmt == "flags":
        return "\n".join(shlex.join(r.frontend_args) for r in best)
    note = answer_note(ans)
    if fmt == "yaml":
        docs = [yaml.safe_dump(best_config(r), sort_keys=False) for r in best]
        return f"# trial #{best[0].number}; {note}\n" + "---\n".join(docs)
    imp = ans.improvement
    return json.dumps(
        {
            "best": [best_payload(r) for r in best],
            "confirmed": ans.confirmed,
            "note": note,
            "verdict": ans.verdict.model_dump(mode="json") if ans.verdict is not None else None,
            "improvement_over_baseline": imp.model_dump(mode="json") if imp else None,
        },
        indent=2,
    )
