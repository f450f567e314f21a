"""Exports of a campaign: ``.json`` (one object), ``.csv`` and ``.parquet`` (flat evaluations).

JSON: ``{"campaign": {name, spec, status}, "evaluations": [...], "elites": [...]}``.
CSV/Parquet: one row per evaluation with ``params.*``, ``measures.*`` and ``metrics.*``
columns (nested metric values are kept as JSON text).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archive.handle import CampaignHandle

EVALUATION_FIELDS = ("id", "seq", "params", "status", "objective", "measures", "metrics", "cell",
                     "proposer", "attempts", "error", "worker", "created_at", "started_at", "finished_at")


def export_document(camp: CampaignHandle) -> dict[str, Any]:
    evaluations = [{k: row[k] for k in EVALUATION_FIELDS} for row in camp.evaluations()]
    elites = [
        {"cell": e["cell"], "evaluation_id": e["evaluation_id"], "objective": e["objective"],
         "measures": e["measures"], "params": e["params"]}
        for e in camp.elites()
    ]
    return {
        "campaign": {"name": camp.name, "spec": camp.spec, "status": camp.record.status},
        "evaluations": evaluations,
        "elites": elites,
    }


def flat_rows(camp: CampaignHandle) -> list[dict[str, Any]]:
    rows = []
    for ev in camp.evaluations():
        row: dict[str, Any] = {k: ev[k] for k in EVALUATION_FIELDS if k not in ("params", "measures", "metrics")}
        for group in ("params", "measures", "metrics"):
            for key, value in (ev[group] or {}).items():
                row[f"{group}.{key}"] = json.dumps(value) if isinstance(value, dict | list) else value
        rows.append(row)
    return rows


def export_campaign(camp: CampaignHandle, path: Path) -> Path:
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".json":
        path.write_text(json.dumps(export_document(camp), indent=1, default=str))
        return path
    if suffix in (".csv", ".parquet"):
        import pandas as pd

        frame = pd.DataFrame(flat_rows(camp))
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        return path
    raise ValueError(f"cannot export to {path.name!r}: use .json, .csv or .parquet")
