"""A meter as the coordinator sees it: read a sample, switch the relay and confirm it.

Two kinds: a Modbus meter (a profile at a device id on a bus, with CT / PT
ratios and a multiplier) and an existing Home Assistant entity (a Shelly, a
utility_meter, a template sensor) with an optional switch entity as relay.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Protocol

from homeassistant.const import STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .modbus import MeterExceptionResponse, MeterIOError, ModbusBus
from .profiles import RATIO_OF, MeterProfile, quantity

_LOGGER = logging.getLogger(__name__)

#: How often (in polls) a coil relay's state is read when nothing was commanded.
#: A coil read is a second request per meter; the state only changes by our
#: command (read back then) or by hand at the meter, which this still notices.
COIL_STATUS_EVERY = 10
#: Relay commands tried before a mismatch is reported.
RELAY_ATTEMPTS = 3


@dataclass(frozen=True, kw_only=True)
class MeterSample:
    """What one poll read from a meter: decoded values and the relay state."""

    values: dict[str, Decimal]
    relay_closed: bool | None

    @property
    def energy(self) -> Decimal:
        """Cumulative import energy in kWh."""
        return self.values["energy_import"]


class RelayMismatch(MeterIOError):
    """The meter did not take the relay state it was told, after retries."""

    def __init__(self, wanted: bool, confirmed: bool) -> None:
        super().__init__(
            f"relay should be {'closed' if wanted else 'open'}, meter reports otherwise"
        )
        self.wanted = wanted
        self.confirmed = confirmed


class MeterReader(Protocol):
    """What the coordinator needs from any meter."""

    manufacturer: str
    model: str
    names: frozenset[str]
    has_relay: bool
    #: The energy value at which the counter wraps to zero (scaled), if it wraps.
    energy_wrap: Decimal | None

    async def read(self) -> MeterSample:
        """Read the meter's values now."""
        ...

    async def set_relay(self, closed: bool) -> bool:
        """Switch the relay, confirm by reading back; return the confirmed state."""
        ...


class ModbusMeter:
    """A profile at a device id on a Modbus bus."""

    def __init__(
        self,
        bus: ModbusBus,
        profile: MeterProfile,
        device_id: int,
        *,
        ct_ratio: Decimal = Decimal(1),
        pt_ratio: Decimal = Decimal(1),
        multiplier: Decimal = Decimal(1),
        coil_status_every: int = COIL_STATUS_EVERY,
    ) -> None:
        self.bus = bus
        self.profile = profile
        self.device_id = device_id
        self.manufacturer = profile.manufacturer
        self.model = profile.model
        self.names = profile.names
        self.has_relay = profile.relay is not None
        self._factor = {
            "ct": ct_ratio,
            "pt": pt_ratio,
            "ctpt": ct_ratio * pt_ratio * multiplier,
            "none": Decimal(1),
        }
        #: Each value's ratio factor, found once (a poll scales every value).
        self._scale = {n: self._factor[RATIO_OF[quantity(n)]] for n in profile.names}
        #: Whether every factor is a plain 1 (most meters): scaling then changes nothing.
        self._unscaled = all(f == 1 and f.as_tuple().exponent == 0 for f in self._scale.values())
        wrap = profile.energy.wrap
        self.energy_wrap = None if wrap is None else wrap * self._factor["ctpt"]
        self._coil_status_every = max(1, coil_status_every)
        self._polls = 0
        self._relay: bool | None = None

    def _scaled(self, values: dict[str, Decimal]) -> dict[str, Decimal]:
        if self._unscaled:
            return values
        scale = self._scale
        return {name: v * scale[name] for name, v in values.items()}

    async def read(self) -> MeterSample:
        """One poll: the planned blocks, plus a coil relay's state every few polls."""
        coil = (
            self.profile.relay is not None
            and self.profile.relay.status.kind == "coil"
            and (self._relay is None or self._polls % self._coil_status_every == 0)
        )
        values, relay = await self.bus.read(self.profile, self.device_id, coil_status=coil)
        self._polls += 1
        if relay is not None:
            self._relay = relay
        return MeterSample(values=self._scaled(values), relay_closed=self._relay)

    async def set_relay(self, closed: bool) -> bool:
        """Command, read back, retry on a mismatch; raise RelayMismatch if it never obeys."""
        confirmed = not closed
        for _ in range(RELAY_ATTEMPTS):
            try:
                await self.bus.write_relay(self.profile, self.device_id, closed)
            except MeterExceptionResponse as err:
                # Some meters refuse a command while busy: read back and retry.
                _LOGGER.debug("Relay command refused: %s", err)
            confirmed = await self.bus.read_relay(self.profile, self.device_id)
            self._relay = confirmed
            if confirmed == closed:
                return confirmed
        raise RelayMismatch(closed, confirmed)


_ENERGY_TO_KWH = {"Wh": Decimal("0.001"), "kWh": Decimal(1), "MWh": Decimal(1000)}
_POWER_TO_W = {"W": Decimal(1), "kW": Decimal(1000)}


class EntityMeter:
    """An existing Home Assistant energy sensor used as a meter."""

    energy_wrap: Decimal | None = None
    manufacturer = "Home Assistant"
    model = "Entity meter"

    def __init__(
        self,
        hass: HomeAssistant,
        energy_entity: str,
        *,
        power_entity: str | None = None,
        relay_entity: str | None = None,
    ) -> None:
        self.hass = hass
        self.energy_entity = energy_entity
        self.power_entity = power_entity
        self.relay_entity = relay_entity
        self.names = frozenset({"energy_import"} | ({"power"} if power_entity else set()))
        self.has_relay = relay_entity is not None

    def _number(self, entity_id: str, units: dict[str, Decimal]) -> Decimal:
        state = self.hass.states.get(entity_id)
        if state is None or state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
            raise MeterIOError(f"{entity_id} is unavailable")
        unit = state.attributes.get("unit_of_measurement")
        factor = units.get(str(unit), Decimal(1)) if unit is not None else Decimal(1)
        try:
            value = Decimal(state.state)
        except InvalidOperation as err:
            raise MeterIOError(f"{entity_id}: {state.state!r} is not a number") from err
        # A value beyond a float's range (``1e400``) is no counter: an energy sensor refuses it.
        if not value.is_finite() or not math.isfinite(float(value * factor)):
            raise MeterIOError(f"{entity_id}: {state.state!r} is not a number")
        return value * factor

    def _relay_closed(self) -> bool | None:
        if self.relay_entity is None:
            return None
        state = self.hass.states.get(self.relay_entity)
        if state is None or state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
            return None
        return state.state == STATE_ON

    async def read(self) -> MeterSample:
        """The entities' current states (no I/O: the state machine already has them)."""
        values = {"energy_import": self._number(self.energy_entity, _ENERGY_TO_KWH)}
        if self.power_entity is not None:
            values["power"] = self._number(self.power_entity, _POWER_TO_W)
        return MeterSample(values=values, relay_closed=self._relay_closed())

    async def set_relay(self, closed: bool) -> bool:
        """Turn the switch entity on or off and confirm from its new state."""
        if self.relay_entity is None:
            raise MeterIOError("this meter has no relay")
        confirmed: bool | None = None
        domain = self.relay_entity.partition(".")[0]  # switch, input_boolean, light...
        for _ in range(RELAY_ATTEMPTS):
            try:
                await self.hass.services.async_call(
                    domain,
                    "turn_on" if closed else "turn_off",
                    {"entity_id": self.relay_entity},
                    blocking=True,
                )
            except HomeAssistantError as err:
                raise MeterIOError(f"{self.relay_entity}: {err}") from err
            confirmed = self._relay_closed()
            if confirmed == closed:
                return closed
        raise RelayMismatch(closed, bool(confirmed))
