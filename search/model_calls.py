"""``atlas status NAME``'s model calls: what each model-backed proposer's calls came to.

Rules:

- The calls' counts, tokens, latest error and median latency are the archive's
  (:meth:`archive.handle.CampaignHandle.model_calls`, aggregated in SQL), and so are the
  answered calls whose reply gave no usable candidate (``unusable``, the latest one's
  reason ``latest_unusable``): a campaign whose every call was answered with garbage shows it.
- ``not_asked`` is how many asks got no request at all, read from the proposer's
  checkpoint (the LLM proposer's ``discarded`` counts of ``server unreachable``: skipped
  while the server could not be reached, and ``request cap reached``); the reasons are in
  ``not_asked_reasons``. A portfolio keeps each member's checkpoint whole inside its own,
  so members are read there. The checkpoint is read only when the campaign has calls: one
  row by its key, its JSON header and the members' bytes, never unpickled. Where it cannot
  be read (none, a legacy pickle, another format), ``not_asked`` is ``None``: not known.
"""

from __future__ import annotations

from typing import Any

#: the LLM proposer's discard reasons for an ask that sent no request (search.proposers.llm)
NOT_ASKED = ("server unreachable", "request cap reached")
MAX_NESTING = 4  # a portfolio's members' checkpoints inside its own: read this deep at most


def model_call_rows(camp: Any) -> list[dict[str, Any]]:
    """Per proposer that called a model (by name): its calls' summary with ``not_asked``
    and ``not_asked_reasons``; empty where no proposer called one."""
    rows = camp.model_calls()
    if not rows:
        return []
    discards = discard_counts(camp.checkpoint())
    for row in rows:
        counts = discards.get(row["proposer"])
        reasons = {k: int(counts[k]) for k in NOT_ASKED if counts and counts.get(k)}
        row["not_asked"] = None if counts is None else sum(reasons.values())
        row["not_asked_reasons"] = reasons
    return rows


def discard_counts(data: bytes | None, depth: int = 0) -> dict[str, dict[str, int]]:
    """Proposer name -> its checkpointed ``discarded`` counts, from the checkpoint ``data``
    and the members' checkpoints held in it (arrays ``member.NAME``); empty where ``data``
    is none or no readable checkpoint."""
    from search.proposers import checkpoint

    if data is None or depth > MAX_NESTING:
        return {}
    try:
        header, blob = checkpoint.split_header(bytes(data), "?")
        found: dict[str, dict[str, int]] = {}
        discarded = header.get("fields", {}).get("discarded") if isinstance(header.get("fields"), dict) else None
        if isinstance(discarded, dict) and isinstance(header.get("proposer"), str):
            found[header["proposer"]] = {str(k): v for k, v in discarded.items() if isinstance(v, int)}
        names = [n for n in header.get("arrays") or [] if isinstance(n, str) and n.startswith("member.")]
        for member in checkpoint.read_arrays(blob, names, "?").values():
            found.update(discard_counts(member.tobytes(), depth + 1))
        return found
    except (checkpoint.CheckpointError, AttributeError, TypeError):
        return {}
