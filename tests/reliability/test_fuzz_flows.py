"""Every form of the site's config, options, reconfigure and sub-entry flows fuzzed with hypothesis.

A real hass, a real simulator (two: the site's bus and a second gateway) and a
real SQLite file; the flows go through Home Assistant's own flow managers
(``hass.config_entries.flow``, ``.options``, ``.subentries``). Whatever a form
is given, it either saves a valid entry, option set or sub-entry, after which
the site loads again (a new site loads too), or it shows the form again with
errors whose keys are in strings.json for that form, or Home Assistant's own
schema check refuses the values (``InvalidData``). A refusal changes nothing:
no entry, sub-entry, option or stored row.

Examples per form: ``PM_FLOW_EXAMPLES`` (default 12; 200 under
``scripts/test-long``).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.config_flow import building
from custom_components.prepaid_meter.const import DOMAIN
from devtools.simulator import MeterSimulator, SimulatedMeter
from devtools.site import site_entry
from tests.reliability.conftest import picture, size
from tests.reliability.test_fuzz_actions import (
    AMOUNTS,
    NON_TEXT,
    TIMES,
    _amount_words,
    _weird_text,
)

EXAMPLES = size(12, 200, "PM_FLOW_EXAMPLES")
COMPONENT = Path(__file__).parents[2] / "custom_components" / DOMAIN
STRINGS = json.loads((COMPONENT / "strings.json").read_text(encoding="utf-8"))
SIMULATOR_PROFILE = (COMPONENT / "meters" / "profiles" / "simulator.yaml").read_text()


@pytest.fixture
def meter_count() -> int:
    """m1-m3 are the building's (tenants t1-t3); m4 and m5 are added as sub-entries."""
    return 6


# --- what the forms are given -------------------------------------------------------------


def rarely(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``rare`` one time in eight (``st.one_of`` would give each branch the same share)."""
    return st.sampled_from([False] * 7 + [True]).flatmap(lambda r: rare if r else common)


#: Amounts typed into a text field (a form's text field always sends text).
NUMBER_TEXT = rarely(
    st.one_of(
        _amount_words,
        st.decimals(allow_nan=True, allow_infinity=True, places=None).map(str),
        st.decimals(min_value=-1000, max_value=1000, places=6).map(str),
        _weird_text,
    ),
    AMOUNTS,
)
TEXT = st.one_of(_weird_text, st.sampled_from(["", " ", "Shop 01", "a" * 300, "\x00", "名字"]))
NAMES = st.one_of(
    st.sampled_from(["New item", "Hall", "Shop 01", "Base", "Sub tenant", "Sub meter", "-", "?"]),
    st.text(alphabet="abcdefgh ", min_size=1, max_size=8),
    TEXT,
)
BOOLS = rarely(st.booleans(), st.sampled_from(["yes", 2, None]))
INTS = st.one_of(
    st.integers(-(10**6), 10**6), st.sampled_from(["5", "x", "", 1.5, "nan", float("nan")])
)
NUMBER_BOX = st.one_of(
    st.integers(1, 31),
    st.integers(-10, 400),
    st.sampled_from([0.5, 1e308, "nan", "inf", "-inf", "NaN", float("nan"), "30", "x"]),
)


def lines(*good: str) -> st.SearchStrategy[Any]:
    """``name: value`` lines: the good ones given, broken ones, and junk."""
    bad = ["x", ":", "a:", ": 5", "a: NaN", "a: -1", "a: 1e999", "a: 5\na: 6", "a:b:c", "\n\n"]
    return st.one_of(
        st.sampled_from([*good, *bad]),
        st.lists(st.sampled_from([*good, *bad]), max_size=3).map("\n".join),
        TEXT,
        NON_TEXT,
    )


def form(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """A form submission: the required fields (now and then one missing) and some optional ones."""
    whole = st.builds(
        lambda r, o: {**r, **o},
        st.fixed_dictionaries(required),
        st.fixed_dictionaries({}, optional=optional),
    )
    dropped = st.builds(
        lambda d, i: {k: d[k] for j, k in enumerate(sorted(d)) if j != i % max(len(d), 1)}
        if d
        else d,
        whole,
        st.integers(0, 20),
    )
    return rarely(whole, dropped)


def _hosts(sim: MeterSimulator) -> st.SearchStrategy[Any]:
    hosts = st.sampled_from(
        [sim.host, sim.host, "localhost", "", " ", "256.1.1.1", "\x00",
         "a" * 300, "http://127.0.0.1", f"{sim.host}:{sim.port}", "名字", "-1"]
    )  # fmt: skip
    return rarely(hosts, NON_TEXT)


def _ports(sim: MeterSimulator, other: MeterSimulator) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from([sim.port, other.port, other.port, 1, 65535, 65536, "x", str(other.port)]),
        st.sampled_from([sim.port, other.port, other.port, 1, 65535, 0, -1, 2.5]),
        st.integers(-5, 70_000),
    )


CURRENCIES = rarely(
    st.sampled_from(["CNY", "CNY", "cny", "EUR", "XX", "ABCD", "€€€", "123", " CNY", ""]), TEXT
)
WARNING_LEVELS = st.one_of(
    st.sampled_from(["100, 50", "50, 100", "100", "abc", "-1", "1e999", "NaN", "1,,2", ""]), TEXT
)
FRIENDLY = st.one_of(
    st.sampled_from(
        ["mon-fri 18:00-08:00", "sat-sun 00:00-24:00", "mon-fri 25:00-08:00", "xyz 1-2",
         "mon 08:00-08:00", "mon-fri 18:00-08:00; sat-sun 00:00-24:00", "sun", ""]
    ),
    TEXT,
)  # fmt: skip
HOLIDAYS = st.one_of(
    st.sampled_from(["2026-01-01", "2026-01-01, 2026-10-01", "2026-02-30", "01-01", "x", ""]),
    TEXT,
)
POLICY = {
    "warning_levels": WARNING_LEVELS,
    "credit_limit": NUMBER_TEXT,
    "friendly_hours": FRIENDLY,
    "holidays": HOLIDAYS,
    "emergency_credit": NUMBER_TEXT,
}
SCHEDULES = st.one_of(
    st.sampled_from(
        ["00:00 valley, 08:00 peak", "00:00 valley", "08:00 peak", "00:00 nosuch",
         "00:00 valley, 25:00 peak", "00:00 valley, 00:00 peak", "00:00", "24:00 peak",
         "00:00 valley; 12:00 peak\n18:00 valley", ""]
    ),
    TEXT,
)  # fmt: skip
PROFILES = st.one_of(
    st.sampled_from(["simulator", "simulator", "sdm120", "dtsu666", "custom", "custom", "nosuch"]),
    TEXT,
)
CUSTOM_PROFILES = st.one_of(
    st.sampled_from(
        [SIMULATOR_PROFILE, "registers: {}", "[", "a: [", "!!python/object/apply:os.system [id]",
         "registers: 5", "name: x\nregisters:\n  energy_import: {address: -1, type: uint32}\n",
         'registers:\n  energy_import: {address: 0, type: float99, scale: "0.01"}\n',
         'registers:\n  energy_import: {address: 0, type: uint32, scale: "NaN"}\n',
         'registers:\n  energy_import: {address: 70000, type: uint32, scale: "1"}\n',
         'utility: gas\nregisters:\n  energy_import: {address: 0, type: uint32, scale: "1"}\n',
         "&a [*a]", "- " * 50, "{" * 200, ""]
    ),
    TEXT,
)  # fmt: skip


def flows(sim: MeterSimulator, other: MeterSimulator) -> dict[str, list[Any]]:
    """Per form: the steps' submissions, in order (a second step only if the first passes)."""
    site_user = form(
        {"name": NAMES, "host": _hosts(sim), "port": _ports(sim, other), "currency": CURRENCIES},
        {
            "database_url": st.one_of(
                st.sampled_from(
                    ["", "nonsense", "sqlite:////nonexistent/dir/x.db", "mysql://", "sqlite://",
                     "postgresql://u:p@127.0.0.1:1/x"]
                ),
                TEXT,
            )
        },
    )  # fmt: skip
    building = form(
        {
            "device_ids": st.one_of(
                st.sampled_from(
                    ["1-3", "1", "0", "1-300", "5-1", "1,1", "a", "", " , ", "1-2-3", "3-4, 6"]
                ),
                TEXT,
            ),
            "name_prefix": TEXT,
            "price": NUMBER_TEXT,
            "cut_off_enabled": BOOLS,
        },
        {},
    )
    options = form(
        {"price": NUMBER_TEXT, "cut_off_enabled": BOOLS, "scan_interval": NUMBER_BOX},
        {
            "billing_day": NUMBER_BOX,
            "days_left_level": NUMBER_BOX,
            "grace_minutes": NUMBER_BOX,
            **POLICY,
        },
    )
    reconfigure = form(
        {"host": _hosts(sim), "port": _ports(sim, other), "currency": CURRENCIES},
        {"database_url": st.sampled_from(["", "nonsense", "sqlite:////nonexistent/dir/x.db"])},
    )
    bus_user = form(
        {
            "name": NAMES,
            "kind": st.one_of(st.sampled_from(["tcp", "rtu_over_tcp", "serial"]), TEXT),
        },
        {},
    )
    bus_network = form(
        {"host": _hosts(other), "port": _ports(other, sim)},
        {"timeout": st.one_of(st.sampled_from([0.05, 0.1, 3, 31, "x", "nan"]), INTS)},
    )
    bus_serial = form(
        {
            "serial_port": st.sampled_from(["/dev/nonexistent", "", "/dev/null", "COM1", "\x00"]),
            "baudrate": st.sampled_from(["9600", "115200", "7", 9600]),
            "parity": st.sampled_from(["N", "E", "X"]),
            "bytesize": st.sampled_from(["7", "8", "9"]),
            "stopbits": st.sampled_from(["1", "2", "3"]),
        },
        {"timeout": st.sampled_from([0.1, 1, 100])},
    )
    meter_user = form(
        {
            "name": NAMES,
            "utility": st.sampled_from(["electricity", "water", "gas"]),
            "source": st.sampled_from(["modbus", "modbus", "entity", "file"]),
        },
        {},
    )
    meter_modbus = form(
        {"device_id": st.one_of(st.sampled_from([4, 5, 6, 6, 6, 1, 9]), INTS), "profile": PROFILES},
        {
            "bus": st.sampled_from(["default", "default", "gateway", "nosuch"]),
            "custom_profile": CUSTOM_PROFILES,
            "ct_ratio": NUMBER_TEXT,
            "pt_ratio": NUMBER_TEXT,
            "multiplier": NUMBER_TEXT,
        },
    )
    meter_entity = form(
        {
            "energy_entity": st.sampled_from(
                ["sensor.good_energy", "sensor.nan_energy", "sensor.inf_energy",
                 "sensor.negative_energy", "sensor.unknown_energy", "sensor.huge_energy",
                 "sensor.missing", "switch.x", "not an entity"]
            )
        },
        {
            "power_entity": st.sampled_from(["sensor.good_power", "sensor.nan_energy", ""]),
            "relay_entity": st.sampled_from(["input_boolean.relay", "switch.missing", "sensor.x"]),
        },
    )  # fmt: skip
    tenant = form(
        {"name": NAMES},
        {
            "contact": TEXT,
            "meters": st.one_of(
                st.lists(st.sampled_from(["sub_meter", "master", "m1", "m9", ""]), max_size=3),
                NON_TEXT,
            ),
            "move_in": st.one_of(st.sampled_from(["2026-01-01", "2026-02-30", "x"]), TEXT),
            "billing": st.sampled_from(["prepaid", "postpaid", "credit"]),
            "tariff": st.sampled_from(["", "base", "nosuch"]),
            "floor_area": NUMBER_TEXT,
            "rated_capacity": NUMBER_TEXT,
            "fees": lines("Management fee: 50", "Water: 0", "Cleaning: 12.50"),
            "language": st.sampled_from(["en", "zh-Hans", "fr"]),
            "days_left_level": INTS,
            "grace_minutes": INTS,
            "cut_off_when_overdue": BOOLS,
            **POLICY,
        },
    )
    tariff = form(
        {"name": NAMES},
        {
            "default": BOOLS,
            "commodity": st.sampled_from(["electricity", "water", "heat"]),
            "effective": st.one_of(TIMES, st.just("2030-01-01 00:00")),
            "kind": st.sampled_from(["flat", "flat", "tou", "tou", "tiered"]),
            "price": NUMBER_TEXT,
            "tou_prices": lines("peak: 1.2", "valley: 0.3", "flat: 0.6"),
            "weekday_schedule": SCHEDULES,
            "weekend_schedule": SCHEDULES,
            "holidays": HOLIDAYS,
            "tiers": lines("100: 0", "200: 0.1", "*: 0.2", "+: 0.3", "x: 1"),
            "tier_basis": st.sampled_from(["period", "year", "week"]),
            "standing": lines("Meter fee: 10/month", "Service: 1/day", "fee: 10/fortnight"),
            "demand_price": NUMBER_TEXT,
            "demand_window": st.sampled_from(["15", "30", "60", "7"]),
            "capacity_price": NUMBER_TEXT,
            "minimum": NUMBER_TEXT,
            "taxes": lines("VAT: 13", "Levy: 0.5", "VAT: 200"),
        },
    )
    sharing = form(
        {
            "name": NAMES,
            "kind": st.sampled_from(["common", "common", "loss", "other"]),
            "method": st.sampled_from(["consumption", "area", "equal", "ratio", "capacity", "x"]),
            "tenants": st.lists(
                st.sampled_from(["t1", "t2", "t3", "sub_tenant", "t9"]), max_size=4
            ),
        },
        {
            "meters": st.lists(st.sampled_from(["master", "sub_meter", "m1", "m9"]), max_size=2),
            "ratios": lines("t1: 2", "t2: 1", "t3: 0", "t1: -1"),
            "master_meter": st.sampled_from(["master", "sub_meter", "m1", ""]),
            "evasion_percent": NUMBER_TEXT,
            "owner_percent": NUMBER_TEXT,
            "cadence": st.sampled_from(["period", "daily", "hourly"]),
            "loss_pricing": st.sampled_from(["master_average", "tariff", "unit_price", "free"]),
        },
    )
    return {
        "site": [site_user, building],
        "site_reconfigure": [reconfigure],
        "options": [options],
        "bus": [bus_user, st.one_of(bus_network, bus_serial)],
        "meter_modbus": [meter_user.map(lambda d: {**d, "source": "modbus"}), meter_modbus],
        "meter_entity": [meter_user.map(lambda d: {**d, "source": "entity"}), meter_entity],
        "meter_reconfigure": [meter_user, st.one_of(meter_modbus, meter_entity)],
        "tenant": [tenant],
        "tenant_reconfigure": [tenant],
        "tariff": [tariff],
        "tariff_reconfigure": [tariff],
        "sharing_rule": [sharing],
        "sharing_rule_reconfigure": [sharing],
    }


FORMS = [
    "site", "site_reconfigure", "options", "bus", "meter_modbus", "meter_entity",
    "meter_reconfigure", "tenant", "tenant_reconfigure", "tariff", "tariff_reconfigure",
    "sharing_rule", "sharing_rule_reconfigure",
]  # fmt: skip


# --- the site the forms are tried on ------------------------------------------------------


@pytest.fixture
async def gateway(socket_enabled: None) -> AsyncGenerator[MeterSimulator]:
    """A second Modbus TCP server: another bus of the site."""
    sim = MeterSimulator([SimulatedMeter(device_id=1, energy_centi_kwh=500)])
    await sim.start()
    yield sim
    await sim.stop()


async def _sub(
    hass: HomeAssistant, entry: MockConfigEntry, kind: str, *steps: dict[str, Any]
) -> str:
    known = set(entry.subentries)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, kind), context={"source": "user"}
    )
    for data in steps:
        result = await hass.config_entries.subentries.async_configure(result["flow_id"], data)
    assert result["type"] is FlowResultType.CREATE_ENTRY, result.get("errors")
    await hass.async_block_till_done()
    (new,) = set(entry.subentries) - known
    return new


@pytest.fixture
async def site(
    hass: HomeAssistant,
    simulator: MeterSimulator,
    gateway: MeterSimulator,
    db_url: str,
    tmp_path: Path,
) -> tuple[MockConfigEntry, dict[str, str]]:
    """The quiet site (m1-m3, t1-t3) with one sub-entry of each kind to reconfigure."""
    hass.config.config_dir = str(tmp_path)
    hass.states.async_set("sensor.good_energy", "1234.5", {"unit_of_measurement": "kWh"})
    hass.states.async_set("sensor.good_power", "2.5", {"unit_of_measurement": "kW"})
    for name, value in [("nan", "nan"), ("inf", "inf"), ("negative", "-5"), ("huge", "1e400")]:
        hass.states.async_set(f"sensor.{name}_energy", value, {"unit_of_measurement": "kWh"})
    hass.states.async_set("sensor.unknown_energy", "unknown", {"unit_of_measurement": "kWh"})
    hass.states.async_set("input_boolean.relay", "on")
    entry = site_entry(simulator, db_url, scan_interval=86_400, options=building([1, 2, 3], "Shop"))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    ids = {
        "bus": await _sub(
            hass, entry, "bus",
            {"name": "Gateway", "kind": "tcp"}, {"host": gateway.host, "port": gateway.port},
        ),
        "meter": await _sub(
            hass, entry, "meter",
            {"name": "Sub meter", "utility": "electricity", "source": "modbus"},
            {"bus": "default", "device_id": 4, "profile": "simulator"},
        ),
        "master": await _sub(
            hass, entry, "meter",
            {"name": "Master", "utility": "electricity", "source": "modbus"},
            {"bus": "default", "device_id": 5, "profile": "simulator"},
        ),
        "tariff": await _sub(hass, entry, "tariff", {"name": "Base", "kind": "flat", "price": "1"}),
        "tenant": await _sub(
            hass, entry, "tenant",
            {"name": "Sub tenant", "meters": ["sub_meter"], "billing": "prepaid", "language": "en"},
        ),
        "sharing_rule": await _sub(
            hass, entry, "sharing_rule",
            {"name": "Loss", "kind": "loss", "method": "consumption", "tenants": ["t1", "t2"],
             "master_meter": "master"},
        ),
    }  # fmt: skip
    assert entry.state is ConfigEntryState.LOADED
    return entry, ids


# --- the check -----------------------------------------------------------------------------


async def _everything(hass: HomeAssistant) -> dict[str, Any]:
    """Every site's data, options and sub-entries, and the first site's stored rows."""
    shown: dict[str, Any] = {}
    for entry in hass.config_entries.async_entries(DOMAIN):
        subs = {
            s.subentry_id: (s.subentry_type, s.title, s.unique_id, dict(s.data))
            for s in entry.subentries.values()
        }
        shown[entry.entry_id] = json.dumps(
            [entry.title, dict(entry.data), dict(entry.options), subs], sort_keys=True, default=str
        )
        if entry.state is ConfigEntryState.LOADED:
            shown[f"{entry.entry_id} store"] = await entry.runtime_data.store.run(
                picture, entry.entry_id
            )
    return shown


def _error_keys(name: str) -> set[str]:
    if name in ("site", "site_reconfigure"):
        return set(STRINGS["config"]["error"])
    if name == "options":
        return set(STRINGS["options"]["error"])
    kind = name.removesuffix("_reconfigure").removeprefix("meter_")
    kind = "meter" if kind in ("modbus", "entity") else kind
    return set(STRINGS["config_subentries"][kind]["error"])


def _abort_keys(name: str) -> set[str]:
    if name in ("site", "site_reconfigure", "options"):
        return set(STRINGS["config"].get("abort", {})) | set(STRINGS["options"].get("abort", {}))
    kind = name.removesuffix("_reconfigure").removeprefix("meter_")
    kind = "meter" if kind in ("modbus", "entity") else kind
    return set(STRINGS["config_subentries"][kind].get("abort", {}))


@pytest.mark.parametrize("name", FORMS)
async def test_fuzz_form(
    hass: HomeAssistant,
    site: tuple[MockConfigEntry, dict[str, str]],
    simulator: MeterSimulator,
    gateway: MeterSimulator,
    name: str,
) -> None:
    """A submission saves a site that loads, or shows translated errors and changes nothing."""
    entry, ids = site
    loop = asyncio.get_running_loop()
    outcomes: Counter[str] = Counter()
    refused: Counter[str] = Counter()  # which field the schema refused
    steps = flows(simulator, gateway)[name]
    kind = name.removesuffix("_reconfigure").removeprefix("meter_")
    kind = "meter" if kind in ("modbus", "entity") else kind
    reconfigure = name.endswith("_reconfigure")

    async def start() -> tuple[Any, Callable[[str, dict[str, Any]], Any], Callable[[str], None]]:
        if name == "site":
            manager: Any = hass.config_entries.flow
            result = await manager.async_init(DOMAIN, context={"source": "user"})
        elif name == "site_reconfigure":
            manager = hass.config_entries.flow
            result = await entry.start_reconfigure_flow(hass)
        elif name == "options":
            manager = hass.config_entries.options
            result = await manager.async_init(entry.entry_id)
        else:
            manager = hass.config_entries.subentries
            context: dict[str, Any] = {"source": "user"}
            if reconfigure:
                context = {"source": "reconfigure", "subentry_id": ids[kind]}
            result = await manager.async_init((entry.entry_id, kind), context=context)
        return result, manager.async_configure, manager.async_abort

    async def one(inputs: list[dict[str, Any]]) -> None:
        before = await _everything(hass)
        sites_before = {e.entry_id for e in hass.config_entries.async_entries(DOMAIN)}
        result, configure, abort = await start()
        assert result["type"] is FlowResultType.FORM, result
        outcome = ""
        for data in inputs:
            try:
                result = await configure(result["flow_id"], dict(data))
            except (InvalidData, vol.Invalid) as err:
                outcome = "schema"
                refused[f"{result['step_id']}:{'/'.join(map(str, err.path))}"] += 1
                break
            if result["type"] is FlowResultType.FORM and result.get("errors"):
                for field, key in result["errors"].items():
                    assert key in _error_keys(name), f"{name} {data!r}: {field}: {key}"
                outcome = "+".join(sorted(set(result["errors"].values())))
                break
            if result["type"] is not FlowResultType.FORM:
                break
        if result["type"] is FlowResultType.FORM:
            abort(result["flow_id"])
            outcome = outcome or "left"
        await hass.async_block_till_done()
        saved = result["type"] is FlowResultType.CREATE_ENTRY or (
            result["type"] is FlowResultType.ABORT and result["reason"] == "reconfigure_successful"
        )
        if saved:
            outcomes["saved"] += 1
            # The changed site (or the new one) loads with what was saved.
            for site_entry_ in hass.config_entries.async_entries(DOMAIN):
                assert site_entry_.state is ConfigEntryState.LOADED, f"{name} {inputs!r}"
            for new in {
                e.entry_id for e in hass.config_entries.async_entries(DOMAIN)
            } - sites_before:
                await hass.config_entries.async_remove(new)
            return
        if result["type"] is FlowResultType.ABORT:
            assert result["reason"] in _abort_keys(name), f"{name} {inputs!r}: {result['reason']}"
            outcome = f"abort:{result['reason']}"
        outcomes[outcome] += 1
        after = await _everything(hass)
        assert after == before, f"{name} refused {inputs!r} but changed the site"
        assert entry.state is ConfigEntryState.LOADED

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(inputs=st.tuples(*steps))
    def fuzz(inputs: tuple[dict[str, Any], ...]) -> None:
        asyncio.run_coroutine_threadsafe(one(list(inputs)), loop).result(timeout=120)

    await hass.async_add_executor_job(fuzz)
    print(f"flow {name}: {sum(outcomes.values())} submissions {dict(outcomes)}")
    print(f"flow {name}: schema refused {dict(refused)}")
    assert sum(outcomes.values()) >= min(EXAMPLES, 10)
