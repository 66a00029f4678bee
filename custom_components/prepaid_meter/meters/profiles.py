"""Meter profiles: register maps as YAML data files, validated on load."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

PROFILE_DIR = Path(__file__).parent / "profiles"
MAX_BLOCK = 125  # registers per read request (Modbus application protocol, 6.3)

DataType = Literal["uint16", "int16", "uint32", "int32", "float32"]
_WIDTH: dict[str, int] = {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2}


class ProfileError(ValueError):
    """A profile file that does not describe a usable meter."""


@dataclass(frozen=True, kw_only=True)
class Register:
    """One value in a meter's register map."""

    name: str
    address: int
    type: DataType
    scale: Decimal
    unit: str
    word_order: Literal["big", "little"] = "big"

    @property
    def width(self) -> int:
        """Number of 16-bit registers the value occupies."""
        return _WIDTH[self.type]

    def decode(self, words: list[int]) -> Decimal:
        """Decode the value from its registers, scaled, exactly (float32 via its repr)."""
        if self.word_order == "little":
            words = list(reversed(words))
        raw = b"".join(w.to_bytes(2, "big") for w in words)
        if self.type == "float32":
            value = Decimal(repr(struct.unpack(">f", raw)[0]))
        else:
            fmt = {"uint16": ">H", "int16": ">h", "uint32": ">I", "int32": ">i"}[self.type]
            value = Decimal(struct.unpack(fmt, raw)[0])
        return value * self.scale


@dataclass(frozen=True, kw_only=True)
class Relay:
    """How the meter's relay is switched and read back."""

    kind: Literal["coil"]
    address: int


@dataclass(frozen=True, kw_only=True)
class Block:
    """One read request: a contiguous run of registers."""

    address: int
    count: int
    registers: tuple[Register, ...]


@dataclass(frozen=True, kw_only=True)
class MeterProfile:
    """A meter model's register map."""

    key: str
    name: str
    manufacturer: str
    model: str
    utility: str
    read_function: Literal["holding", "input"]
    counter_max: int
    registers: tuple[Register, ...]
    relay: Relay | None

    def blocks(self) -> tuple[Block, ...]:
        """Merge the registers into the fewest reads of at most MAX_BLOCK registers."""
        return plan_blocks(self.registers)


def plan_blocks(registers: tuple[Register, ...]) -> tuple[Block, ...]:
    """Greedy merge in address order: a block grows while it stays within MAX_BLOCK."""
    blocks: list[Block] = []
    current: list[Register] = []
    start = end = 0
    for reg in sorted(registers, key=lambda r: r.address):
        reg_end = reg.address + reg.width
        if current and reg_end - start <= MAX_BLOCK:
            current.append(reg)
            end = max(end, reg_end)
            continue
        if current:
            blocks.append(Block(address=start, count=end - start, registers=tuple(current)))
        current, start, end = [reg], reg.address, reg_end
    if current:
        blocks.append(Block(address=start, count=end - start, registers=tuple(current)))
    return tuple(blocks)


def _register(name: str, spec: Any) -> Register:
    if not isinstance(spec, dict):
        raise ProfileError(f"register {name}: expected a mapping")
    try:
        reg_type = spec["type"]
        if reg_type not in _WIDTH:
            raise ProfileError(f"register {name}: unknown type {reg_type!r}")
        address = int(spec["address"])
        if not 0 <= address <= 0xFFFF:
            raise ProfileError(f"register {name}: address out of range")
        return Register(
            name=name,
            address=address,
            type=reg_type,
            scale=Decimal(str(spec.get("scale", "1"))),
            unit=str(spec.get("unit", "")),
            word_order=spec.get("word_order", "big"),
        )
    except KeyError as err:
        raise ProfileError(f"register {name}: missing {err}") from err


def parse_profile(key: str, data: Any) -> MeterProfile:
    """Validate a profile's parsed YAML and build it."""
    if not isinstance(data, dict) or "registers" not in data:
        raise ProfileError(f"profile {key}: no registers")
    registers = tuple(_register(n, s) for n, s in data["registers"].items())
    if not any(r.name == "energy_import" for r in registers):
        raise ProfileError(f"profile {key}: an energy_import register is required")
    relay = None
    if (relay_spec := data.get("relay")) is not None:
        if relay_spec.get("kind") != "coil":
            raise ProfileError(f"profile {key}: unsupported relay kind")
        relay = Relay(kind="coil", address=int(relay_spec["address"]))
    read_function = data.get("read_function", "holding")
    if read_function not in ("holding", "input"):
        raise ProfileError(f"profile {key}: read_function must be holding or input")
    return MeterProfile(
        key=key,
        name=str(data.get("name", key)),
        manufacturer=str(data.get("manufacturer", "")),
        model=str(data.get("model", "")),
        utility=str(data.get("utility", "electricity")),
        read_function=read_function,
        counter_max=int(data.get("counter_max", 0xFFFFFFFF)),
        registers=registers,
        relay=relay,
    )


@cache
def load_profile(key: str) -> MeterProfile:
    """Load a shipped profile by its file name (blocking: call from an executor)."""
    path = PROFILE_DIR / f"{key}.yaml"
    if not path.is_file():
        raise ProfileError(f"unknown profile {key}")
    return parse_profile(key, yaml.safe_load(path.read_text(encoding="utf-8")))
