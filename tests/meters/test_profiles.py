"""Profiles as data: every shipped file validates, decodes exactly, and plans few reads."""

from __future__ import annotations

import itertools
import struct
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.prepaid_meter.meters.modbus import BusConfig
from custom_components.prepaid_meter.meters.profiles import (
    MAX_BLOCK,
    PROFILE_DIR,
    RELAY_STATUS,
    Block,
    ProfileError,
    Register,
    load_profile,
    parse_profile,
    plan_blocks,
    rtu_max_gap,
    shipped_profiles,
)

#: Requests per poll for each shipped profile, and why.
EXPECTED_REQUESTS = {
    "simulator": 1,  # values 0..5 and the relay status register 6
    "sdm120": 1,  # 0x0000..0x004B
    "sdm630": 1,  # 0x0000..0x004B
    "ddsy1352": 1,  # 0x0000..0x0010 and the relay status 0x0058: 89 registers
    "adl400_b": 1,  # energy only
    "adl400_a": 2,  # energy at 0, power at 356..363: too far apart for one read
    "ddsu666": 2,  # 0x2000.. and 0x4000..
    "dtsu666": 2,  # 0x2006.. and 0x4000..
}


#: Requests per poll on a 9600-baud RS-485 line (8N1, the default 30 ms pause), and why.
EXPECTED_SERIAL_REQUESTS = EXPECTED_REQUESTS | {
    "sdm120": 2,  # 0x0000..0x001F, then 0x0046..0x004B: 38 unused registers between
    "sdm630": 2,  # 0x0000..0x0011, then 0x0034..0x004B: 34 unused between
    "ddsy1352": 2,  # 0x0000..0x0010, then the relay status 0x0058: 71 unused between
    "dtsu666": 3,  # 0x2006..0x2019, frequency 0x2044 (42 unused between), 0x4000..
}
STANDARD_BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def test_every_shipped_profile_is_listed_here() -> None:
    assert set(shipped_profiles()) == set(EXPECTED_REQUESTS)
    assert set(EXPECTED_SERIAL_REQUESTS) == set(EXPECTED_REQUESTS)


def test_the_gap_worth_reading_through_follows_the_line() -> None:
    # (8 + 5 + 7 characters of frames + 0.03 s x 960 characters/s) / 2 bytes per register
    assert rtu_max_gap(9600, pause=0.03) == 24
    assert rtu_max_gap(2400, pause=0.03) == 13
    assert rtu_max_gap(9600, parity="E", pause=0.03) == 23  # 11 bits a character
    assert rtu_max_gap(9600) == 10  # the frames alone
    assert rtu_max_gap(115200, pause=0.03) == MAX_BLOCK
    serial = BusConfig(kind="serial", serial_port="/dev/ttyUSB0", baudrate=9600)
    assert serial.max_gap == 24
    assert (
        BusConfig(kind="serial", serial_port="/dev/ttyUSB0", baudrate=9600, pause=0).max_gap == 10
    )
    # Behind a TCP gateway the line's speed is unknown: the fewest requests.
    assert BusConfig(host="gw", kind="rtu_over_tcp").max_gap == MAX_BLOCK
    assert BusConfig(host="gw").max_gap == MAX_BLOCK


def _line_characters(blocks: tuple[Block, ...], baudrate: int, pause: float) -> float:
    """Characters' worth of line time a poll takes: frames, data and the pauses."""
    return sum(20 + 2 * b.count + pause * baudrate / 10 for b in blocks)


@pytest.mark.parametrize("key", sorted(EXPECTED_REQUESTS))
def test_a_serial_line_reads_in_the_least_line_time(key: str) -> None:
    profile = load_profile(key)
    for baud in STANDARD_BAUDS:
        gap = BusConfig(kind="serial", serial_port="/dev/ttyS0", baudrate=baud).max_gap
        planned, fewest = profile.blocks(gap), profile.blocks()
        assert sorted(r.name for b in planned for r in b.registers) == sorted(
            r.name for b in fewest for r in b.registers
        )
        time_planned = _line_characters(planned, baud, 0.03)
        assert time_planned <= _line_characters(fewest, baud, 0.03), (key, baud)
        # Any one more split, or one fewer, would not be quicker either.
        for other in (gap - 1, gap + 1):
            assert time_planned <= _line_characters(profile.blocks(other), baud, 0.03) + 1e-9
    at_9600 = BusConfig(kind="serial", serial_port="/dev/ttyS0").max_gap
    assert len(profile.blocks(at_9600)) == EXPECTED_SERIAL_REQUESTS[key]


@pytest.mark.parametrize("key", sorted(EXPECTED_REQUESTS))
def test_shipped_profile_loads_and_plans(key: str) -> None:
    profile = load_profile(key)
    blocks = profile.blocks()
    assert len(blocks) == EXPECTED_REQUESTS[key]
    planned = [r.name for b in blocks for r in b.registers]
    expected = sorted(r.name for r in profile.registers)
    if profile.status_in_block:
        expected = sorted([*expected, RELAY_STATUS])
    assert sorted(planned) == expected, "every value read exactly once"
    for block in blocks:
        assert 1 <= block.count <= MAX_BLOCK
        for reg in block.registers:
            assert block.address <= reg.address
            assert reg.end <= block.address + block.count
            assert reg.function == block.function


@pytest.mark.parametrize("key", sorted(EXPECTED_REQUESTS))
def test_shipped_profile_cites_its_source(key: str) -> None:
    """Each file says where its registers come from (a manual, a table, a page)."""
    text = (PROFILE_DIR / f"{key}.yaml").read_text(encoding="utf-8")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert "ource" in header or key == "simulator"
    if not load_profile(key).verified:
        assert "verified" in text


def test_float32_decodes_to_the_decimal_the_meter_meant() -> None:
    reg = Register(name="energy_import", address=0, type="float32")
    words = reg.encode(Decimal("1234.56"))
    # float32 holds 1234.56 as 1234.56005859375; the shortest decimal that is
    # the same float32 is what the meter displays.
    assert struct.unpack(">f", reg.raw_bytes(words))[0] != 1234.56
    assert reg.decode(words) == Decimal("1234.56")
    assert Register(name="voltage", address=0, type="float32").decode(
        reg.encode(Decimal(230))
    ) == Decimal("230.0")


def test_word_order_sign_and_scale() -> None:
    big = Register(name="power", address=0, type="int32")
    little = Register(name="power", address=0, type="int32", word_order="little")
    assert big.decode([0xFFFF, 0xFFFE]) == -2
    assert little.decode([0xFFFE, 0xFFFF]) == -2
    assert little.encode(Decimal(-2)) == [0xFFFE, 0xFFFF]
    scaled = Register(name="current", address=0, type="uint16", scale=Decimal("0.01"))
    assert scaled.decode([1234]) == Decimal("12.34")
    assert Register(name="power", address=0, type="int16").decode([0x8000]) == -32768


def test_counter_wrap_is_scaled() -> None:
    energy = load_profile("ddsy1352").energy
    assert energy.counter_max == 0xFFFFFFFF
    assert energy.wrap == Decimal("42949672.96")
    assert energy.encode(Decimal("42949672.96")) == [0, 0]
    assert load_profile("sdm120").energy.wrap is None  # float counters do not wrap


def _custom(**over: Any) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "name": "My meter",
        "read_function": "holding",
        "registers": {
            "energy_import": {"address": "0x10", "type": "uint32", "scale": "0.1"},
            "power": {"address": 0, "type": "int16", "scale": "1000"},
        },
        "relay": {
            "control": {"kind": "register", "address": 0x20, "close": 0, "open": 1},
            "status": {"kind": "register", "address": 0x21, "closed": 0},
        },
    }
    profile.update(over)
    return profile


def test_custom_profile_from_the_ui() -> None:
    profile = parse_profile("custom:m1", _custom())
    assert profile.energy.address == 0x10
    assert profile.energy.scale == Decimal("0.1")
    assert profile.relay is not None
    assert profile.relay.control.on == (0,)
    assert [(b.address, b.count) for b in profile.blocks()] == [(0, 0x22)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"registers": {"power": {"address": 0, "type": "int16"}}}, "energy_import"),
        ({"registers": {"energy_import": {"address": 0, "type": "int64"}}}, "type"),
        ({"registers": {"energy_import": {"address": 70000, "type": "uint32"}}}, "range"),
        ({"registers": {"energy_import": {"address": 0xFFFF, "type": "uint32"}}}, "past"),
        ({"registers": {"energy_import": {"type": "uint32"}}}, "required"),
        ({"registers": {"energy_import": {"address": 0, "type": "uint32", "unit": "Wh"}}}, "unit"),
        ({"registers": {"energy_import": {"address": 0, "type": "uint32", "scale": "x"}}}, "scale"),
        ({"registers": {"energy_import": {"address": 0, "type": "uint32", "scale": 0}}}, "scale"),
        (
            {"registers": {"energy_import": {"address": 0, "type": "uint32", "colour": 1}}},
            "unknown",
        ),
        ({"registers": {"temperature": {"address": 0, "type": "uint16"}}}, "quantity"),
        (
            {
                "registers": {
                    "energy_import": {"address": 0, "type": "uint32"},
                    "power": {"address": 1, "type": "int16"},
                }
            },
            "overlap",
        ),
        ({"read_function": "coils"}, "read_function"),
        (
            {"relay": {"control": {"kind": "register", "address": 1, "close": 1, "open": 1}}},
            "differ",
        ),
        (
            {"relay": {"control": {"kind": "register", "address": 1, "close": 1, "open": 0}}},
            "status",
        ),
        (
            {
                "relay": {
                    "control": {"kind": "register", "address": 1, "close": [1, 0], "open": [1, 1]},
                    "status": {"kind": "coil", "address": 0},
                }
            },
            "one value",
        ),
        ({"relay": {"control": {"kind": "magnet", "address": 1}}}, "kind"),
        ({"max_gap": 500}, "max_gap"),
        ({"registers": []}, "mapping"),
        ({"flavour": "x"}, "unknown"),
    ],
)
def test_invalid_profiles_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_profile("custom:bad", _custom(**change))


def test_unknown_profile() -> None:
    with pytest.raises(ProfileError):
        load_profile("no_such_meter")
    with pytest.raises(ProfileError):
        load_profile("custom")


def test_max_gap_splits_reads_for_meters_that_refuse_undefined_addresses() -> None:
    regs = (
        Register(name="energy_import", address=0, type="uint32"),
        Register(name="power", address=40, type="int16"),
    )
    assert len(plan_blocks(regs)) == 1
    assert len(plan_blocks(regs, max_gap=10)) == 2


_register_sets = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=2000),
        st.sampled_from(["uint16", "uint32", "float32"]),
        st.sampled_from(["holding", "input"]),
    ),
    min_size=1,
    max_size=40,
)


@given(_register_sets)
def test_planner_covers_everything_within_the_limit_with_fewest_reads(
    specs: list[tuple[int, str, str]],
) -> None:
    regs = tuple(
        Register(name=f"power_{i}", address=a, type=t, function=f)  # type: ignore[arg-type]
        for i, (a, t, f) in enumerate(specs)
    )
    blocks = plan_blocks(regs)
    covered = sorted(r.name for b in blocks for r in b.registers)
    assert covered == sorted(r.name for r in regs)
    for b in blocks:
        assert b.count <= MAX_BLOCK
        assert all(b.address <= r.address and r.end <= b.address + b.count for r in b.registers)
    # Fewest reads: no two neighbouring blocks of a function could have been one.
    for function in ("holding", "input"):
        mine = [b for b in blocks if b.function == function]
        for before, after in itertools.pairwise(mine):
            assert after.registers[0].end - before.address > MAX_BLOCK


_words = st.integers(min_value=0, max_value=0xFFFF)


def _per_register(block: Block, words: list[int]) -> dict[str, Decimal]:
    """What the block holds, decoded value by value from its words (the reference)."""
    return {
        r.name: r.decode(words[r.address - block.address : r.end - block.address])
        for r in block.registers
    }


@pytest.mark.parametrize("key", sorted(EXPECTED_REQUESTS))
@given(data=st.data())
def test_block_decodes_what_each_register_decodes(key: str, data: st.DataObject) -> None:
    for block in load_profile(key).blocks():
        words = data.draw(st.lists(_words, min_size=block.count, max_size=block.count))
        raw = struct.pack(f">{block.count}H", *words)
        decoded = block.decode(raw)
        assert {n: str(v) for n, v in decoded.items()} == {
            n: str(v) for n, v in _per_register(block, words).items()
        }


_layouts = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=6),  # unused registers before the value
        st.sampled_from(["uint16", "int16", "uint32", "int32", "float32"]),
        st.sampled_from(["big", "little"]),
        st.sampled_from(["1", "0.01", "0.1", "1000", "-1", "2.5"]),
    ),
    min_size=1,
    max_size=12,
)


@given(layout=_layouts, data=st.data())
def test_block_decode_matches_registers_for_any_layout(
    layout: list[tuple[int, str, str, str]], data: st.DataObject
) -> None:
    regs, at = [], 3
    for i, (gap, kind, order, scale) in enumerate(layout):
        reg = Register(
            name=f"power_{i}",
            address=at + gap,
            type=kind,  # type: ignore[arg-type]
            word_order=order,  # type: ignore[arg-type]
            scale=Decimal(scale),
        )
        regs.append(reg)
        at = reg.end
    (block,) = plan_blocks(tuple(regs))
    words = data.draw(st.lists(_words, min_size=block.count, max_size=block.count))
    raw = struct.pack(f">{block.count}H", *words)
    decoded = block.decode(raw)
    expected = _per_register(block, words)
    assert decoded.keys() == expected.keys()
    for name, value in expected.items():
        # Equal, and the same digits (NaN from a float32 pattern equals nothing).
        assert str(decoded[name]) == str(value)
