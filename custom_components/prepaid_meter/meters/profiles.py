"""Meter profiles: register maps as YAML data files, validated on load.

A profile says where a meter keeps each value (function, address, data type,
word order, scale) and how its relay is switched and read back. Values are
decoded to ``Decimal`` in one canonical unit per quantity (kWh, W, V, A, Hz),
so a profile whose meter reports kW says ``scale: 1000``. The same loader
validates the "custom" profile a user fills in through the UI (a dict kept in
the meter's config).
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal, cast

import yaml

PROFILE_DIR = Path(__file__).parent / "profiles"
MAX_BLOCK = 125  # registers per read request (Modbus application protocol v1.1b3, 6.3/6.4)
CUSTOM = "custom"

DataType = Literal["uint16", "int16", "uint32", "int32", "float32"]
Function = Literal["holding", "input"]
WordOrder = Literal["big", "little"]
_WIDTH: dict[str, int] = {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2}
_INT_FORMAT = {"uint16": ">H", "int16": ">h", "uint32": ">I", "int32": ">i"}
_INT_MAX = {"uint16": 0xFFFF, "int16": 0x7FFF, "uint32": 0xFFFFFFFF, "int32": 0x7FFFFFFF}

#: The canonical unit of each quantity a register may hold; the name's prefix decides.
UNITS: dict[str, str] = {
    "energy": "kWh",
    "power": "W",
    "voltage": "V",
    "current": "A",
    "power_factor": "",
    "frequency": "Hz",
}
#: Which per-meter transformer ratio scales a quantity (a CT multiplies current,
#: a PT voltage, both multiply power and energy).
RATIO_OF: dict[str, Literal["ct", "pt", "ctpt", "none"]] = {
    "energy": "ctpt",
    "power": "ctpt",
    "voltage": "pt",
    "current": "ct",
    "power_factor": "none",
    "frequency": "none",
}
RELAY_STATUS = "relay_status"


class ProfileError(ValueError):
    """A profile that does not describe a usable meter."""


def quantity(name: str) -> str:
    """The quantity a register name measures: 'energy_import' -> 'energy'."""
    for prefix in sorted(UNITS, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "_"):
            return prefix
    raise ProfileError(f"register {name}: unknown quantity (use one of {sorted(UNITS)})")


def decode_float32(raw: bytes) -> Decimal:
    """The shortest decimal that is the same float32: what the meter meant, exactly."""
    (value,) = struct.unpack(">f", raw)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.pack(">f", float(text)) == raw:
            return Decimal(repr(float(text)))  # plain notation: 230.0, not 2.3E+2
    return Decimal(repr(value))  # pragma: no cover - 9 digits always round-trip


@dataclass(frozen=True, kw_only=True)
class Register:
    """One value in a meter's register map."""

    name: str
    address: int
    type: DataType
    scale: Decimal = Decimal(1)
    function: Function = "holding"
    word_order: WordOrder = "big"
    #: The largest raw value of a counter before it wraps to zero (integers only).
    counter_max: int | None = None

    @property
    def width(self) -> int:
        """Number of 16-bit registers the value occupies."""
        return _WIDTH[self.type]

    @property
    def end(self) -> int:
        """The address after the value's last register."""
        return self.address + self.width

    def raw_bytes(self, words: list[int]) -> bytes:
        """The value's bytes, most significant first, whatever the word order."""
        if self.word_order == "little":
            words = list(reversed(words))
        return b"".join(w.to_bytes(2, "big") for w in words)

    def decode(self, words: list[int]) -> Decimal:
        """Decode the value from its registers and scale it, exactly."""
        return self.decode_bytes(self.raw_bytes(words))

    def decode_bytes(self, raw: bytes) -> Decimal:
        """Decode the value from its bytes (most significant first) and scale it, exactly."""
        if self.type == "float32":
            return decode_float32(raw) * self.scale
        return Decimal(struct.unpack(_INT_FORMAT[self.type], raw)[0]) * self.scale

    def encode(self, value: Decimal) -> list[int]:
        """The registers a meter holds for ``value`` (the simulator's side of decode)."""
        if self.type == "float32":
            raw = struct.pack(">f", float(value / self.scale))
        else:
            number = int((value / self.scale).to_integral_value(rounding="ROUND_FLOOR"))
            if self.counter_max is not None:
                number %= self.counter_max + 1
            if self.type.startswith("u"):
                number &= 0xFFFF if self.width == 1 else 0xFFFFFFFF
            raw = struct.pack(_INT_FORMAT[self.type], number)
        words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
        return list(reversed(words)) if self.word_order == "little" else words

    @property
    def wrap(self) -> Decimal | None:
        """The decoded value at which the counter starts again from zero, if it wraps."""
        if self.counter_max is None:
            return None
        return (self.counter_max + 1) * self.scale


@dataclass(frozen=True, kw_only=True)
class RelayControl:
    """How a relay is switched: a coil (function 05) or holding registers (06 / 16)."""

    kind: Literal["coil", "register", "registers"]
    address: int
    #: Values written to close the relay (supply on) and to open it.
    on: tuple[int, ...] = (1,)
    off: tuple[int, ...] = (0,)


@dataclass(frozen=True, kw_only=True)
class RelayStatus:
    """How the relay's state is read back: a coil, or a register folded into the block read."""

    kind: Literal["coil", "register"]
    address: int
    function: Function = "holding"
    #: For a register: the value that means closed (supply on); any other is open.
    closed: int = 1

    def register(self) -> Register:
        """The status as a register of the block plan."""
        return Register(
            name=RELAY_STATUS, address=self.address, type="uint16", function=self.function
        )


@dataclass(frozen=True, kw_only=True)
class Relay:
    """A meter's supply relay."""

    control: RelayControl
    status: RelayStatus


@dataclass(frozen=True, kw_only=True)
class Block:
    """One read request: a contiguous run of registers read with one function."""

    function: Function
    address: int
    count: int
    registers: tuple[Register, ...]

    @cached_property
    def _layout(self) -> tuple[struct.Struct, tuple[tuple[Register, bool], ...]]:
        """One struct over the block's bytes: a field per value, pad bytes over the gaps.

        Big-endian integers come out as numbers; float32 and little word order
        values as their bytes, decoded by their register (``swap``: reverse the words).
        """
        fmt, at, fields = ">", self.address, []
        for reg in sorted(self.registers, key=lambda r: r.address):
            fmt += "x" * (2 * (reg.address - at))
            if reg.type != "float32" and reg.word_order == "big":
                fmt += _INT_FORMAT[reg.type][1]
                fields.append((reg, False))
            else:
                fmt += f"{2 * reg.width}s"
                fields.append((reg, True))
            at = reg.end
        return struct.Struct(fmt), tuple(fields)

    def decode(self, raw: bytes) -> dict[str, Decimal]:
        """Every value of the block from the answer's bytes (``2 * count`` of them), exactly.

        The same values as ``Register.decode`` on each value's words, in one
        unpack of the whole answer: a poll decodes every block of every meter.
        """
        layout, fields = self._layout
        values: dict[str, Decimal] = {}
        for (reg, as_bytes), item in zip(fields, layout.unpack_from(raw), strict=True):
            if as_bytes:
                if reg.word_order == "little":
                    item = b"".join(item[i : i + 2] for i in range(len(item) - 2, -1, -2))
                values[reg.name] = reg.decode_bytes(item)
            else:
                values[reg.name] = Decimal(item) * reg.scale
        return values


@dataclass(frozen=True, kw_only=True)
class MeterProfile:
    """A meter model's register map."""

    key: str
    name: str
    manufacturer: str
    model: str
    utility: str = "electricity"
    verified: bool = False
    registers: tuple[Register, ...]
    relay: Relay | None = None
    #: The widest run of unused registers a block read may span: some meters
    #: answer an exception for addresses they do not define.
    max_gap: int = MAX_BLOCK
    #: Planned reads by the widest gap they may span.
    _blocks: dict[int, tuple[Block, ...]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def energy(self) -> Register:
        """The import-energy register the wallet is charged from."""
        return next(r for r in self.registers if r.name == "energy_import")

    @property
    def names(self) -> frozenset[str]:
        """The values this profile reads."""
        return frozenset(r.name for r in self.registers)

    @property
    def status_in_block(self) -> bool:
        """Whether the relay status comes with the values (no extra request)."""
        return self.relay is not None and self.relay.status.kind == "register"

    def blocks(self, max_gap: int = MAX_BLOCK) -> tuple[Block, ...]:
        """The reads of one poll: values and, where it is a register, the relay status.

        ``max_gap``: the widest unused run the bus is willing to read through
        (see `rtu_max_gap`); the profile's own limit applies as well.
        """
        gap = min(max_gap, self.max_gap)
        if gap not in self._blocks:
            registers = self.registers
            if self.relay is not None and self.relay.status.kind == "register":
                registers = (*registers, self.relay.status.register())
            self._blocks[gap] = plan_blocks(registers, max_gap=gap)
        return self._blocks[gap]


#: Characters one more RTU read costs besides its data: the request (address,
#: function, start, count, CRC: 8), the answer's address, function, byte count
#: and CRC (5), and the 3.5 characters of silence before each of the two frames
#: (Modbus over serial line v1.02, 2.5.1.1).
RTU_REQUEST_OVERHEAD = 8 + 5 + 7


def rtu_max_gap(
    baudrate: int, *, bytesize: int = 8, parity: str = "N", stopbits: int = 1, pause: float = 0.0
) -> int:
    """The widest unused run worth reading through on an RTU serial line.

    Reading through ``g`` unused registers sends ``2 g`` more characters; a
    second request instead costs its frames (`RTU_REQUEST_OVERHEAD`) and the
    bus's pause between requests. On a slow line the fewest requests are not
    the quickest poll: 71 unused registers lie between the Acrel DDSY1352's
    values and its relay status, 142 characters or about 150 ms at 9600 baud,
    where a second request costs about 50 ms (20 characters and the default
    30 ms pause). The meter's own delay before it answers is not known and
    not counted: a split is chosen when reading through the gap costs more
    than the frames and the pause alone.
    """
    bits = 1 + bytesize + (0 if parity == "N" else 1) + stopbits
    characters = RTU_REQUEST_OVERHEAD + pause * baudrate / bits
    return min(MAX_BLOCK, int(characters // 2))


def plan_blocks(registers: tuple[Register, ...], *, max_gap: int = MAX_BLOCK) -> tuple[Block, ...]:
    """Merge registers into the fewest reads, each at most MAX_BLOCK registers long.

    Per function, in address order, a block grows while the next value still
    fits in MAX_BLOCK registers from the block's start and the unused run
    before it is at most ``max_gap``. For sorted intervals on a line this greedy
    choice gives the fewest blocks (each block starts at the first value the
    previous one could not take).
    """
    blocks: list[Block] = []
    for function in ("holding", "input"):
        regs = sorted((r for r in registers if r.function == function), key=lambda r: r.address)
        current: list[Register] = []
        start = end = 0
        for reg in regs:
            if current and reg.end - start <= MAX_BLOCK and reg.address - end <= max_gap:
                current.append(reg)
                end = max(end, reg.end)
                continue
            if current:
                blocks.append(_block(function, start, end, current))
            current, start, end = [reg], reg.address, reg.end
        if current:
            blocks.append(_block(function, start, end, current))
    return tuple(blocks)


def _block(function: str, start: int, end: int, regs: list[Register]) -> Block:
    return Block(
        function=cast(Function, function), address=start, count=end - start, registers=tuple(regs)
    )


# --- validation -------------------------------------------------------------------------------


def _int(value: Any, what: str, low: int = 0, high: int = 0xFFFF) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ProfileError(f"{what}: expected an integer")
    try:
        number = int(value, 0) if isinstance(value, str) else value
    except ValueError as err:
        raise ProfileError(f"{what}: expected an integer") from err
    if not low <= number <= high:
        raise ProfileError(f"{what}: {number} is out of range {low}..{high}")
    return number


def _choice(value: Any, what: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ProfileError(f"{what}: {value!r} is not one of {', '.join(options)}")
    return str(value)


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProfileError(f"{what}: expected a mapping")
    return value


_REGISTER_KEYS = {"address", "type", "scale", "unit", "function", "word_order", "counter_max"}


def _register(name: str, spec: Any, defaults: dict[str, Any]) -> Register:
    spec = _mapping(spec, f"register {name}")
    if unknown := set(spec) - _REGISTER_KEYS:
        raise ProfileError(f"register {name}: unknown keys {sorted(unknown)}")
    what = f"register {name}"
    kind = quantity(name)
    if "address" not in spec or "type" not in spec:
        raise ProfileError(f"{what}: address and type are required")
    reg_type = _choice(spec["type"], f"{what} type", tuple(_WIDTH))
    unit = str(spec.get("unit", UNITS[kind]))
    if unit != UNITS[kind]:
        raise ProfileError(f"{what}: unit must be {UNITS[kind]!r} (convert with scale)")
    try:
        scale = Decimal(str(spec.get("scale", "1")))
    except InvalidOperation as err:
        raise ProfileError(f"{what}: scale is not a number") from err
    if not scale.is_finite() or scale == 0:
        raise ProfileError(f"{what}: scale must be a non-zero number")
    counter_max = None
    if kind == "energy" and reg_type != "float32":
        counter_max = _INT_MAX[reg_type]
        if "counter_max" in spec:
            counter_max = _int(spec["counter_max"], f"{what} counter_max", 1, _INT_MAX[reg_type])
    elif "counter_max" in spec:
        raise ProfileError(f"{what}: counter_max applies to integer energy counters only")
    address = _int(spec["address"], f"{what} address")
    if address + _WIDTH[reg_type] > 0x10000:
        raise ProfileError(f"{what}: runs past the last address")
    return Register(
        name=name,
        address=address,
        type=cast(DataType, reg_type),
        scale=scale,
        function=cast(
            Function,
            _choice(
                spec.get("function", defaults["function"]), f"{what} function", ("holding", "input")
            ),
        ),
        word_order=cast(
            WordOrder,
            _choice(
                spec.get("word_order", defaults["word_order"]),
                f"{what} word_order",
                ("big", "little"),
            ),
        ),
        counter_max=counter_max,
    )


def _values(value: Any, what: str) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ProfileError(f"{what}: give at least one value")
    return tuple(_int(v, what) for v in items)


def _relay(spec: Any, key: str) -> Relay:
    spec = _mapping(spec, f"profile {key} relay")
    control_spec = _mapping(spec.get("control"), f"profile {key} relay control")
    kind = _choice(
        control_spec.get("kind"), "relay control kind", ("coil", "register", "registers")
    )
    address = _int(control_spec.get("address"), "relay control address")
    if kind == "coil":
        control = RelayControl(kind="coil", address=address)
    else:
        # YAML 1.1 reads a bare ``on``/``off`` key as a boolean: the keys are close/open.
        on = _values(control_spec.get("close"), "relay control close")
        off = _values(control_spec.get("open"), "relay control open")
        if len(on) != len(off) or on == off:
            raise ProfileError("relay control: close and open must differ and have the same length")
        if kind == "register" and len(on) != 1:
            raise ProfileError("relay control: kind register writes one value (use registers)")
        control = RelayControl(
            kind=cast(Literal["register", "registers"], kind), address=address, on=on, off=off
        )
    status_spec = spec.get("status")
    if status_spec is None:
        if kind != "coil":
            raise ProfileError("relay status: required unless the relay is a coil")
        status = RelayStatus(kind="coil", address=address)
    else:
        status_spec = _mapping(status_spec, "relay status")
        status_kind = _choice(status_spec.get("kind"), "relay status kind", ("coil", "register"))
        status = RelayStatus(
            kind=cast(Literal["coil", "register"], status_kind),
            address=_int(status_spec.get("address"), "relay status address"),
            function=cast(
                Function,
                _choice(
                    status_spec.get("function", "holding"),
                    "relay status function",
                    ("holding", "input"),
                ),
            ),
            closed=_int(status_spec.get("closed", 1), "relay status closed"),
        )
    return Relay(control=control, status=status)


_PROFILE_KEYS = {
    "name", "manufacturer", "model", "utility", "verified", "read_function", "word_order",
    "max_gap", "registers", "relay",
}  # fmt: skip


def parse_profile(key: str, data: Any) -> MeterProfile:
    """Validate a profile's parsed YAML (or a custom profile dict) and build it."""
    data = _mapping(data, f"profile {key}")
    if unknown := set(data) - _PROFILE_KEYS:
        raise ProfileError(f"profile {key}: unknown keys {sorted(unknown)}")
    defaults = {
        "function": _choice(
            data.get("read_function", "holding"), "read_function", ("holding", "input")
        ),
        "word_order": _choice(data.get("word_order", "big"), "word_order", ("big", "little")),
    }
    specs = _mapping(data.get("registers"), f"profile {key} registers")
    registers = tuple(_register(str(n), s, defaults) for n, s in specs.items())
    if "energy_import" not in {r.name for r in registers}:
        raise ProfileError(f"profile {key}: an energy_import register is required")
    _check_overlaps(key, registers)
    relay = _relay(data["relay"], key) if data.get("relay") is not None else None
    return MeterProfile(
        key=key,
        name=str(data.get("name", key)),
        manufacturer=str(data.get("manufacturer", "")),
        model=str(data.get("model", "")),
        utility=str(data.get("utility", "electricity")),
        verified=bool(data.get("verified", False)),
        registers=registers,
        relay=relay,
        max_gap=_int(data.get("max_gap", MAX_BLOCK), f"profile {key} max_gap", 0, MAX_BLOCK),
    )


def _check_overlaps(key: str, registers: tuple[Register, ...]) -> None:
    for function in ("holding", "input"):
        regs = sorted((r for r in registers if r.function == function), key=lambda r: r.address)
        for before, after in itertools.pairwise(regs):
            if after.address < before.end:
                raise ProfileError(f"profile {key}: {before.name} and {after.name} overlap")


def shipped_profiles() -> list[str]:
    """The keys of the profiles shipped with the integration."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


@cache
def load_profile(key: str) -> MeterProfile:
    """Load a shipped profile by its file name (blocking: call from an executor)."""
    path = PROFILE_DIR / f"{key}.yaml"
    if key == CUSTOM or not path.is_file():
        raise ProfileError(f"unknown profile {key}")
    return parse_profile(key, yaml.safe_load(path.read_text(encoding="utf-8")))
