"""Every bus kind and every shipped profile, read for real from the simulator.

The simulator encodes each meter's live state with the profile's map; the
integration's reader decodes it. mbpoll (libmodbus, an independent client)
reads the same registers, so an error shared by our encoder and decoder
cannot hide.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)

from custom_components.prepaid_meter.meters.modbus import (
    BusConfig,
    MeterExceptionResponse,
    MeterIOError,
    ModbusBus,
    _HoldingAnswer,
    _InputAnswer,
)
from custom_components.prepaid_meter.meters.profiles import (
    MeterProfile,
    Register,
    load_profile,
    shipped_profiles,
)
from custom_components.prepaid_meter.meters.reader import ModbusMeter, RelayMismatch
from devtools.simulator import MeterSimulator, SimulatedMeter
from tests.meters.conftest import StartSim


def expected(reg: Register, meter: SimulatedMeter, at: float) -> Decimal:
    """What a correct reader decodes: the value at the register's resolution."""
    value = meter.values(at)[reg.name]
    if reg.type == "float32":
        return value
    steps = (value / reg.scale).to_integral_value(rounding="ROUND_FLOOR")
    if reg.counter_max is not None:
        steps %= reg.counter_max + 1
    return steps * reg.scale


def building(profile: str, count: int = 3) -> list[SimulatedMeter]:
    return [
        SimulatedMeter(
            device_id=10 * i,
            profile=profile,
            base_power_w=900.0 * i,
            energy_centi_kwh=123_456 * i,
            power_factor=0.9,
        )
        for i in range(1, count + 1)
    ]


@pytest.mark.parametrize("key", shipped_profiles())
async def test_each_profile_reads_in_its_planned_requests(start_sim: StartSim, key: str) -> None:
    sim = await start_sim(building(key))
    sim.advance(1800)
    bus = ModbusBus(BusConfig(host=sim.host, port=sim.port, timeout=1))
    profile = load_profile(key)
    try:
        for dev_id, meter in sim.meters.items():
            reader = ModbusMeter(bus, profile, dev_id, coil_status_every=1000)
            before = sim.requests.total()
            sample = await reader.read()
            requests = sim.requests.total() - before
            coil = profile.relay is not None and not profile.status_in_block
            assert requests == len(profile.blocks()) + (1 if coil else 0)
            for reg in profile.registers:
                assert sample.values[reg.name] == expected(reg, meter, sim.now()), reg.name
            if profile.relay is not None:
                assert sample.relay_closed is True
            # The second poll of a coil relay no longer reads the coil.
            before = sim.requests.total()
            await reader.read()
            assert sim.requests.total() - before == len(profile.blocks())
    finally:
        bus.close()


async def test_ct_pt_ratio_and_multiplier(start_sim: StartSim) -> None:
    sim = await start_sim(building("ddsy1352", 1))
    bus = ModbusBus(BusConfig(host=sim.host, port=sim.port, timeout=1))
    plain = await ModbusMeter(bus, load_profile("ddsy1352"), 10).read()
    scaled = await ModbusMeter(
        bus,
        load_profile("ddsy1352"),
        10,
        ct_ratio=Decimal(40),
        pt_ratio=Decimal(100),
        multiplier=Decimal("1.5"),
    ).read()
    bus.close()
    assert scaled.energy == plain.energy * 40 * 100 * Decimal("1.5")
    assert scaled.values["power"] == plain.values["power"] * 6000
    assert scaled.values["current"] == plain.values["current"] * 40
    assert scaled.values["voltage"] == plain.values["voltage"] * 100
    assert scaled.values["power_factor"] == plain.values["power_factor"]


async def _relay_round_trip(sim: MeterSimulator, bus: ModbusBus, key: str, dev_id: int) -> None:
    reader = ModbusMeter(bus, load_profile(key), dev_id)
    assert await reader.set_relay(False) is False
    assert sim.meters[dev_id].relay_closed is False
    assert (await reader.read()).relay_closed is False
    assert await reader.set_relay(True) is True
    assert sim.meters[dev_id].relay_closed is True


@pytest.mark.parametrize("key", ["simulator", "ddsy1352"])
async def test_relay_commands_are_read_back(start_sim: StartSim, key: str) -> None:
    sim = await start_sim(building(key, 1))
    bus = ModbusBus(BusConfig(host=sim.host, port=sim.port, timeout=1))
    try:
        await _relay_round_trip(sim, bus, key, 10)
    finally:
        bus.close()


async def test_rtu_over_tcp_gateway(start_sim: StartSim) -> None:
    meters = [*building("ddsy1352", 2), SimulatedMeter(device_id=7, energy_centi_kwh=42)]
    sim = await start_sim(meters, transport="rtu_over_tcp")
    bus = ModbusBus(BusConfig(kind="rtu_over_tcp", host=sim.host, port=sim.port, timeout=1))
    try:
        sample = await ModbusMeter(bus, load_profile("simulator"), 7).read()
        assert sample.energy == Decimal("0.42")
        sample = await ModbusMeter(bus, load_profile("ddsy1352"), 20).read()
        assert sample.energy == Decimal("2469.12")
        await _relay_round_trip(sim, bus, "ddsy1352", 20)
    finally:
        bus.close()
    # A plain Modbus TCP client cannot talk to an RTU gateway: the kinds matter.
    tcp = ModbusBus(BusConfig(host=sim.host, port=sim.port, timeout=0.3, retries=0))
    with pytest.raises(MeterIOError):
        await ModbusMeter(tcp, load_profile("simulator"), 7).read()
    tcp.close()


async def test_rtu_on_a_serial_line(start_sim: StartSim, pty_pair: tuple[str, str]) -> None:
    """A real serial line (a socat pty pair): RTU framing, CRC, the pause between requests."""
    server_end, client_end = pty_pair
    meters = [
        SimulatedMeter(device_id=1, profile="sdm120", energy_centi_kwh=100_001),
        SimulatedMeter(device_id=2, profile="ddsy1352", energy_centi_kwh=200_002),
    ]
    sim = await start_sim(meters, transport="serial", serial_port=server_end, baudrate=9600)
    bus = ModbusBus(BusConfig(kind="serial", serial_port=client_end, baudrate=9600, timeout=1))
    assert bus.config.request_pause == pytest.approx(0.03)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = await ModbusMeter(bus, load_profile("sdm120"), 1).read()
        second = await ModbusMeter(bus, load_profile("ddsy1352"), 2).read()
        # Three pauses: at 9600 baud each meter's values and its far register
        # (energy; relay status) are two reads, quicker than reading through the gap.
        assert sim.requests.total() == 4
        assert loop.time() - started >= 3 * 0.03, "the line is quiet between requests"
        assert first.energy == Decimal("1000.01")
        assert first.values["voltage"] == Decimal("230.0")
        assert second.energy == Decimal("2000.02")
        await _relay_round_trip(sim, bus, "ddsy1352", 2)
        # Nobody at device 99: a timeout, and the line still works afterwards.
        with pytest.raises(MeterIOError):
            await ModbusMeter(bus, load_profile("sdm120"), 99).read()
        assert (await ModbusMeter(bus, load_profile("sdm120"), 1).read()).energy == first.energy
    finally:
        bus.close()


# --- faults at the bus ----------------------------------------------------------------------


@pytest.fixture
async def faulty(start_sim: StartSim) -> tuple[MeterSimulator, ModbusBus, ModbusMeter]:
    sim = await start_sim([SimulatedMeter(device_id=1, energy_centi_kwh=500)])
    bus = ModbusBus(BusConfig(host=sim.host, port=sim.port, timeout=0.3, retries=0))
    return sim, bus, ModbusMeter(bus, load_profile("simulator"), 1)


@pytest.mark.parametrize(
    ("kind", "params", "error"),
    [
        ("no_answer", {}, MeterIOError),
        ("slow", {"delay": 0.6}, MeterIOError),
        ("exception", {"code": 4}, MeterExceptionResponse),
        ("exception", {"code": 2}, MeterExceptionResponse),
        ("drop", {}, MeterIOError),
        ("garbage", {}, MeterIOError),
    ],
)
async def test_fault_is_an_error_and_the_bus_recovers(
    faulty: tuple[MeterSimulator, ModbusBus, ModbusMeter],
    kind: str,
    params: dict[str, float],
    error: type[Exception],
) -> None:
    sim, bus, reader = faulty
    assert (await reader.read()).energy == Decimal("5.00")
    sim.set_fault(1, kind, **params)  # type: ignore[arg-type]
    with pytest.raises(error):
        await reader.read()
    sim.clear_fault(1)
    await asyncio.sleep(0.7)  # let a slow answer arrive late: it must not be taken for the next
    sim.meters[1].energy_centi_kwh = 777
    assert (await reader.read()).energy == Decimal("7.77")
    bus.close()


async def test_slow_answer_within_the_timeout_is_fine(
    faulty: tuple[MeterSimulator, ModbusBus, ModbusMeter],
) -> None:
    sim, bus, reader = faulty
    sim.set_fault(1, "slow", delay=0.1)
    assert (await reader.read()).energy == Decimal("5.00")
    bus.close()


async def test_relay_that_does_not_obey_is_retried_then_reported(
    faulty: tuple[MeterSimulator, ModbusBus, ModbusMeter],
) -> None:
    sim, bus, reader = faulty
    sim.set_fault(1, "relay_stuck")
    with pytest.raises(RelayMismatch) as err:
        await reader.set_relay(False)
    assert err.value.wanted is False
    assert err.value.confirmed is True
    assert sim.requests[5] == 3, "three coil writes before giving up"
    assert sim.meters[1].relay_closed is True
    bus.close()


async def test_many_meters_per_server(start_sim: StartSim) -> None:
    meters = [SimulatedMeter(device_id=d, energy_centi_kwh=d) for d in (1, 100, 247)]
    sim = await start_sim(meters)
    bus = ModbusBus(BusConfig(host=sim.host, port=sim.port, timeout=1))
    for dev_id in (1, 100, 247):
        sample = await ModbusMeter(bus, load_profile("simulator"), dev_id).read()
        assert sample.energy == Decimal(dev_id) / 100
    bus.close()
    with pytest.raises(ValueError, match="247"):
        MeterSimulator([SimulatedMeter(device_id=248)])


# --- cross-check with an independent client --------------------------------------------------

_VALUE = re.compile(r"^\[(\d+)\]:\s+(-?[\d.eE+-]+)", re.MULTILINE)


async def mbpoll(*args: str) -> dict[int, str]:
    """Run mbpoll once; its values by reference."""
    proc = await asyncio.create_subprocess_exec(
        "mbpoll",
        *args,
        "-1",
        "-0",
        "-o",
        "2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return {int(ref): text for ref, text in _VALUE.findall(out.decode())}


def mbpoll_type(reg: Register) -> list[str]:
    table = "4" if reg.function == "holding" else "3"
    suffix = {"float32": ":float", "uint32": ":int", "int32": ":int"}.get(reg.type, "")
    return ["-t", table + suffix] + (["-B"] if reg.word_order == "big" else [])


def from_mbpoll(reg: Register, text: str) -> Decimal:
    raw = Decimal(text)
    if reg.type == "uint16" and raw < 0:
        raw += 0x10000
    if reg.type == "int16" and raw > 0x7FFF:
        raw -= 0x10000
    if reg.type == "uint32" and raw < 0:
        raw += 0x100000000
    return raw * reg.scale


async def cross_check(
    profile: MeterProfile, decoded: dict[str, Decimal], target: list[str]
) -> None:
    for reg in profile.registers:
        values = await mbpoll(*target, *mbpoll_type(reg), "-r", str(reg.address), "-c", "1")
        theirs = from_mbpoll(reg, values[reg.address])
        ours = decoded[reg.name]
        if reg.type == "float32":  # mbpoll prints 6 significant digits
            assert abs(theirs - ours) <= abs(ours) * Decimal("1e-5"), reg.name
        else:
            assert theirs == ours, reg.name


@pytest.fixture
def has_mbpoll() -> None:
    if shutil.which("mbpoll") is None:
        pytest.fail("mbpoll is not installed (scripts/setup installs it)")


@pytest.mark.usefixtures("has_mbpoll")
@pytest.mark.parametrize("key", shipped_profiles())
async def test_mbpoll_reads_what_we_decode(start_sim: StartSim, key: str) -> None:
    sim = await start_sim(building(key, 2))
    sim.advance(600)
    profile = load_profile(key)
    bus = ModbusBus(BusConfig(host=sim.host, port=sim.port, timeout=1))
    try:
        for dev_id in sim.meters:
            sample = await ModbusMeter(bus, profile, dev_id).read()
            target = ["-m", "tcp", "-p", str(sim.port), "-a", str(dev_id), sim.host]
            await cross_check(profile, sample.values, target)
    finally:
        bus.close()


@pytest.mark.usefixtures("has_mbpoll")
async def test_mbpoll_over_rtu_on_a_serial_line(
    start_sim: StartSim, pty_pair: tuple[str, str]
) -> None:
    server_end, client_end = pty_pair
    sim = await start_sim(
        building("ddsy1352", 1), transport="serial", serial_port=server_end, baudrate=9600
    )
    sim.advance(600)
    profile = load_profile("ddsy1352")
    bus = ModbusBus(BusConfig(kind="serial", serial_port=client_end, baudrate=9600, timeout=1))
    sample = await ModbusMeter(bus, profile, 10).read()
    bus.close()
    target = ["-m", "rtu", "-b", "9600", "-P", "none", "-a", "10", client_end]
    await cross_check(profile, sample.values, target)


@given(st.binary(min_size=1, max_size=300))
def test_register_answers_decode_as_pymodbus_does(data: bytes) -> None:
    """The bus's answers to 03/04 give pymodbus's words, and refuse what it refuses."""
    for ours, theirs in (
        (_HoldingAnswer(), ReadHoldingRegistersResponse()),
        (_InputAnswer(), ReadInputRegistersResponse()),
    ):
        try:
            theirs.decode(data)
        except ModbusIOException:
            with pytest.raises(ValueError, match="byte_count"):
                ours.decode(data)
            continue
        ours.decode(data)
        assert ours.registers == theirs.registers
        assert ours.raw == data[1 : 1 + data[0]]


async def test_bus_decodes_answers_with_the_whole_answer_classes(start_sim: StartSim) -> None:
    sim = await start_sim(building("ddsy1352", count=1))
    bus = ModbusBus(BusConfig(host=sim.host, port=sim.port, timeout=1))
    profile = load_profile("ddsy1352")
    (block,) = profile.blocks()
    try:
        await bus.check()
        answer = await bus._call("read_holding_registers", 0, count=block.count, device_id=10)
        assert isinstance(answer, _HoldingAnswer)
        assert len(answer.raw) == 2 * block.count
        # pymodbus formats every answer for its debug log: the words in hex.
        assert f"{block.count} words 0x{answer.raw.hex()}" in str(answer)
    finally:
        bus.close()
