"""Tariff versions kept for good: what charged a period is what its bill and recalculation rate.

One row per (site, tariff id, version) in ``pm_tariff_version``, the tariff's
name, unit, currency and time zone stored with each version (the latest row's
are used). Versions are only ever added: a configured version whose effective
instant is already stored with different prices is refused (a price change is
a new version).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..engine.tariffs import Tariff, tariff_from_dict
from .models import TariffVersion


class TariffVersionChanged(ValueError):
    """A stored tariff version was edited in the options."""

    def __init__(self, tariff: str, effective: str) -> None:
        super().__init__(f"{tariff}: version from {effective} is already stored differently")
        self.tariff = tariff
        self.effective = effective


def _canonical(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def sync_tariffs(
    session: Session, site: str, definitions: Mapping[str, Mapping[str, Any]]
) -> dict[str, Tariff]:
    """Store the configured tariffs' new versions; answer every tariff as stored.

    ``definitions`` are in `tariff_to_dict` form. Raises `TariffVersionChanged`
    (and stores nothing) when a stored version differs from its configuration.
    """
    rows = session.scalars(
        select(TariffVersion)
        .where(TariffVersion.site == site)
        .order_by(TariffVersion.tariff, TariffVersion.effective_from)
    ).all()
    stored: dict[str, dict[str, str]] = {}
    for row in rows:
        data = json.loads(row.definition)
        for version in data["versions"]:
            stored.setdefault(row.tariff, {})[version["effective"]] = _canonical(version)
    added: list[TariffVersion] = []
    for tid, definition in definitions.items():
        base = {k: v for k, v in definition.items() if k != "versions"}
        for version in definition["versions"]:
            one = {**base, "versions": [version]}
            known = stored.get(tid, {}).get(version["effective"])
            if known is None:
                parsed = tariff_from_dict(one)
                added.append(
                    TariffVersion(
                        site=site,
                        tariff=tid,
                        effective_from=parsed.versions[0].effective,
                        definition=_canonical(one),
                    )
                )
            elif known != _canonical(version):
                session.rollback()
                raise TariffVersionChanged(tid, version["effective"])
    session.add_all(added)
    session.commit()
    return {tid: stored_tariff(session, site, tid) for tid in definitions}


def stored_tariff(session: Session, site: str, tariff: str) -> Tariff:
    """A tariff with all its stored versions (the latest row's name and zone)."""
    rows = session.scalars(
        select(TariffVersion)
        .where(TariffVersion.site == site, TariffVersion.tariff == tariff)
        .order_by(TariffVersion.effective_from)
    ).all()
    if not rows:
        raise KeyError(tariff)
    return parsed_tariff(tuple(row.definition for row in rows))


@functools.lru_cache(maxsize=32)
def parsed_tariff(definitions: tuple[str, ...]) -> Tariff:
    """The tariff of stored version rows (oldest first; the latest's name and zone).

    The same rows give the same (immutable) object: rating keeps its work on
    a tariff - how a month of intervals falls into its periods - by the
    tariff's identity, and a bill run reads the tariff again for each chunk.
    """
    versions: list[Any] = []
    base: dict[str, Any] = {}
    for definition in definitions:
        data = json.loads(definition)
        base = {k: v for k, v in data.items() if k != "versions"}
        versions.extend(data["versions"])
    return tariff_from_dict({**base, "versions": versions})
