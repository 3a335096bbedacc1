"""What `dynamo-tune best` prints: the answer's trial(s) as flags, YAML or JSON, and its note.
Pure formatting (the caller prints).

Every format states the same answer: with a confirmed winner its confirmed mean and its gain
over the baseline with the verdict's interval; a search trial's single value only labelled as
such. The flags are the router flags the study set (searched, overridden or set in the
deployment's `router:`); a flag the stack added on its own (the local stack's
`--kv-cache-block-size`) is named in a `#` comment instead, or printed with `--all`.
"""

from __future__ import annotations

import json
import shlex

import yaml

from dynamo_tune.study.confirmation.verdict_text import headline
from dynamo_tune.study.read.answers import Answer, best_config, best_payload, router_args


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


def value_line(ans: Answer) -> str | None:
    """The confirmed winner's mean against the baseline's and, labelled, the search value
    that selected it: `score: confirmed mean 0.9000 vs baseline #0 0.8000 (n=3 each); search
    value 0.9200 (one measurement, not the evidence)`; None for any other answer."""
    imp = ans.improvement
    if ans.kind != "winner" or imp is None or imp.n is None or not ans.trials:
        return None
    n = f"n={imp.n[0]} each" if imp.n[0] == imp.n[1] else f"n={imp.n[0]} vs {imp.n[1]}"
    line = (
        f"{imp.metric}: confirmed mean {imp.best_value:.4f} vs baseline #{imp.baseline_trial} "
        f"{imp.baseline_value:.4f} ({n})"
    )
    values = ans.trials[0].values
    if values is not None:
        line += f"; search value {values[0]:.4f} (one measurement, not the evidence)"
    return line


def left_out_comments(ans: Answer) -> list[str]:
    """`# not printed: ...`, one per chosen trial whose flags include one the stack set on its
    own (not tuned, not set by the study: it must match the deployment it is pasted into)."""
    out = []
    for r in ans.trials:
        _, stack = router_args(r)
        if stack:
            out.append(
                f"# not printed (#{r.number}): {shlex.join(stack)}: set by the measuring stack, "
                "not by the study; use your deployment's own value (`--all` prints it)"
            )
    return out


def best_text(ans: Answer, fmt: str, all_flags: bool = False) -> str:
    """The answer's trial(s) as frontend flags, router YAML or JSON ("" when there is none).
    `all_flags`: flags prints every frontend flag the trial ran with, the stack's own too."""
    best = ans.trials
    if not best:
        return ""
    if fmt == "flags":
        return "\n".join(
            shlex.join(r.frontend_args if all_flags else router_args(r)[0]) for r in best
        )
    note = answer_note(ans)
    if fmt == "yaml":
        docs = [yaml.safe_dump(best_config(r), sort_keys=False) for r in best]
        head = [f"# trial #{best[0].number}; {note}"]
        head += [f"# {line}" for line in [value_line(ans)] if line is not None]
        return "\n".join(head) + "\n" + "---\n".join(docs)
    imp = ans.improvement
    return json.dumps(
        {
            "best": [best_payload(r, ans.verdict) for r in best],
            "confirmed": ans.confirmed,
            "note": note,
            "verdict": ans.verdict.model_dump(mode="json") if ans.verdict is not None else None,
            "improvement_over_baseline": imp.model_dump(mode="json") if imp else None,
        },
        indent=2,
    )
