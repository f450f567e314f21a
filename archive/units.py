"""How a quantity's name is shown with its unit, the one rule every reader follows: the
figures' axes and colour bars (:mod:`archive.figures`), the CLI's table headers
(:mod:`search.cli_tables`) and the dashboard (its API sends the units; ``Atlas.withUnit``
in ``dashboard/static/common.js`` applies this rule). Plain Python: no plotting library, no
torch, no SQL.

Units come from :attr:`archive.records.CampaignSettings.units` (the spec's ``unit`` of the
objective and of each measure, else the evaluator's declared one); they only label.
"""

from __future__ import annotations

from collections.abc import Mapping


def unit_label(label: str, unit: str | None) -> str:
    """``label`` as an axis, a colour bar or a column header names a quantity:
    ``mean_entropy (nats)`` where it has a ``unit``, ``label`` alone where it has none
    (``None`` or empty)."""
    return f"{label} ({unit})" if unit else label


def with_unit(name: str, units: Mapping[str, str]) -> str:
    """``name`` with its unit in ``units`` (:func:`unit_label`): ``mean_entropy (nats)``, or
    the bare name where ``units`` gives it none."""
    return unit_label(name, units.get(name))
