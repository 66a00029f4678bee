"""Which tariff prices whom: the entry's tariff options, resolved once for charging, bills, sharing.

Options shape (the tariff sub-entries write the same):

- ``tariffs``: {tariff id: engine tariff dict (`engine.tariffs.tariff_from_dict`)};
- ``tariff``: the id of the site's default tariff, or (older entries) an
  engine tariff dict itself, kept under the id ``default``;
- a tenant's ``tariff``: an id overriding the default;
- no tariff at all: a flat tariff at the ``price`` option.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any, Final

from .const import CONF_TENANTS
from .engine.billing import flat_tariff
from .engine.tariffs import Tariff, TariffError, tariff_from_dict, tariff_to_dict

CONF_TARIFFS: Final = "tariffs"
CONF_TARIFF: Final = "tariff"
#: The id a tariff given inline as the ``tariff`` option (the older form) is kept under.
LEGACY_ID: Final = "default"


class TariffConfigError(ValueError):
    """A tariff option that cannot be used; ``key`` is the translation key, ``error`` says why."""

    def __init__(self, key: str, tariff: str, error: str) -> None:
        super().__init__(f"{tariff}: {error}")
        self.key = key
        self.tariff = tariff
        self.error = error


@dataclass(frozen=True, kw_only=True)
class SiteTariffs:
    """The site's tariffs by id, its default and each tenant's choice (None: the flat price)."""

    tariffs: Mapping[str, Tariff] = field(default_factory=dict)
    default: str | None = None
    tenants: Mapping[str, str | None] = field(default_factory=dict)
    price: Decimal = Decimal(0)
    currency: str = ""
    timezone: str = "UTC"

    def tariff_id(self, tenant: str) -> str | None:
        """The id of the tariff that prices the tenant (None: the flat price)."""
        return self.tenants.get(tenant, self.default)

    def tariff(self, tariff_id: str | None) -> Tariff:
        """A tariff by id; the flat tariff for None."""
        if tariff_id is None:
            return self._flat
        return self.tariffs[tariff_id]

    @cached_property
    def _flat(self) -> Tariff:
        """The flat tariff at ``price``, built once (sensors ask for it every poll)."""
        return flat_tariff(self.price, self.currency, self.timezone)

    def for_tenant(self, tenant: str) -> Tariff:
        """The tariff that prices the tenant."""
        return self.tariff(self.tariff_id(tenant))

    def definitions(self) -> dict[str, dict[str, Any]]:
        """The configured tariffs in their stored form, by id."""
        return {tid: tariff_to_dict(t) for tid, t in self.tariffs.items()}


def site_tariffs(
    options: Mapping[str, Any], *, currency: str, timezone: str, price: Decimal
) -> SiteTariffs:
    """Read and check the tariff options; raises `TariffConfigError` on anything unusable."""
    raw = options.get(CONF_TARIFFS) or {}
    if not isinstance(raw, Mapping):
        raise TariffConfigError("invalid_tariff", CONF_TARIFFS, "expected an object of tariffs")
    specs: dict[str, Any] = dict(raw)
    default = options.get(CONF_TARIFF)
    if isinstance(default, Mapping):
        specs.setdefault(LEGACY_ID, default)
        default = LEGACY_ID
    tariffs: dict[str, Tariff] = {}
    for tid, spec in specs.items():
        if not isinstance(tid, str) or not tid.strip() or len(tid) > 64:
            raise TariffConfigError("invalid_tariff", str(tid), "a tariff id is a short text")
        try:
            tariff = tariff_from_dict(spec)
        except TariffError as err:
            raise TariffConfigError("invalid_tariff", tid, str(err)) from err
        if tariff.currency != currency:
            raise TariffConfigError(
                "invalid_tariff", tid, f"currency {tariff.currency} is not the site's {currency}"
            )
        tariffs[tid] = tariff
    if default is not None and default not in tariffs:
        raise TariffConfigError("unknown_tariff", str(default), "no such tariff")
    tenants: dict[str, str | None] = {}
    for spec in options.get(CONF_TENANTS, []):
        chosen = spec.get(CONF_TARIFF)
        if chosen is None:
            continue
        if chosen not in tariffs:
            raise TariffConfigError("unknown_tariff", str(chosen), f"tenant {spec.get('id')}")
        tenants[str(spec["id"])] = chosen
    return SiteTariffs(
        tariffs=tariffs,
        default=default,
        tenants=tenants,
        price=price,
        currency=currency,
        timezone=timezone,
    )
