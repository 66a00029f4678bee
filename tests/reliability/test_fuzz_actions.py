"""Every action fuzzed with hypothesis against a real hass, simulator and SQLite file.

Each action gets generated calls: amounts (NaN, infinities, huge, negative,
too many decimals, words), references, times, CSV text, tenant and meter ids.
Whatever comes in, the action either does its work (and the ledger stays
sound) or refuses with a ``ServiceValidationError`` / ``HomeAssistantError``
whose translation key exists in strings.json, and leaves every table, the
balances and the entry's options exactly as they were. A value the action's
schema itself rejects (a list where a string belongs) is refused by Home
Assistant's schema check with ``vol.Invalid`` before the action runs; the
test checks that this is really the schema and that nothing changed either.

Examples per action: ``PM_FUZZ_EXAMPLES`` (default 25; 700 under
``scripts/test-long``, 17 actions x 700 = 11,900 calls).
"""

from __future__ import annotations

import asyncio
import json
import string
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import DOMAIN, PAYMENT_METHODS
from tests.reliability.conftest import picture, size, sound

EXAMPLES = size(25, 700, "PM_FUZZ_EXAMPLES")
STRINGS = Path(__file__).parents[2] / "custom_components" / DOMAIN / "strings.json"
KEYS = set(json.loads(STRINGS.read_text(encoding="utf-8"))["exceptions"])

# --- what the calls are made of ---------------------------------------------------------

_weird_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
)
_amount_words = st.sampled_from(
    [
        "NaN", "nan", "-NaN", "sNaN", "inf", "-inf", "Infinity", "1e999", "-1e999",
        "1E+3", "0", "-0", "0.00", "0.001", "1.005", "5", "5.00", " 5 ", "+5", "--5",
        "-5", "1_000", "1,000", "0x10", "１０", "٣", "5e-3", "1000000000", "1000000000.01",
        "999999999.99", "9" * 40, "0." + "0" * 30 + "1", "", " ", "abc", "5 CNY", "¥5",
    ]
)  # fmt: skip
AMOUNTS = st.one_of(
    _amount_words,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.decimals(allow_nan=True, allow_infinity=True, places=None).map(str),
    st.decimals(min_value=-1000, max_value=1000, places=6).map(str),
    _weird_text,
)
REFERENCES = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "\x00", "a" * 128, "a" * 129, "ref\nline", "p-1", "p-1", "\u200b"]),
    st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=12),
    _weird_text,
)
_future = datetime.now(UTC) + timedelta(days=3650)
TIMES = st.one_of(
    st.sampled_from(
        [
            "",
            "now",
            "yesterday",
            "2026-02-30T00:00:00",
            "9999-12-31T23:59:59",
            "0001-01-01T00:00:00",
            "1970-01-01T00:00:00Z",
            "2026-01-01",
            "2026-01-01T25:00",
            "2026-01-01T00:00:00+99:00",
            "1e10",
            "-1",
        ]
    ),
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.none()
    ).map(datetime.isoformat),
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=_future.replace(tzinfo=None),
        timezones=st.just(UTC),
    ).map(datetime.isoformat),
    st.integers(),
    _weird_text,
)
#: Real ids half the time, so that accepted calls and the checks behind the id are reached too.
TENANTS = st.one_of(
    st.sampled_from(["t1", "t2", "t3"]), st.sampled_from(["T1", "t1 ", "", "t4"]), _weird_text
)
METERS = st.one_of(
    st.sampled_from(["m1", "m2", "m3"]), st.sampled_from(["M1", "m1 ", "", "m9"]), _weird_text
)
METHODS = st.one_of(st.sampled_from(PAYMENT_METHODS), _weird_text)
BOOLS = st.one_of(st.booleans(), st.sampled_from(["yes", "no", "on", "maybe", 2]))
#: ``ENTRY`` stands for the site's real entry id.
ENTRY = "<entry>"
ENTRY_IDS = st.one_of(st.just(ENTRY), st.just(ENTRY), st.sampled_from(["", "nope"]), _weird_text)
#: Values that are not strings at all, where the schema expects one.
NON_TEXT = st.one_of(st.none(), st.lists(st.integers(), max_size=2), st.just({"a": 1}))

_csv_value = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=-10, max_value=10**40).map(str),
    _weird_text,
)
_csv_row = st.tuples(METERS, TIMES.map(str), _csv_value).map(
    lambda r: ",".join(f'"{f}"' if "," in f or '"' in f else f for f in r)
)
CSV = st.one_of(
    st.lists(_csv_row, max_size=5).map("\n".join),
    st.lists(_csv_row, max_size=3).map(lambda rows: "meter,time,value\n" + "\n".join(rows)),
    _weird_text,
    st.sampled_from(["", "\n\n", "meter,time,value", 'm1,"2026-01-01T00:00:00', "a,b\nc"]),
)
FILES = st.one_of(
    st.sampled_from(["", "../etc/passwd", "/etc/passwd", "missing.csv", ".", "..", "readings"]),
    _weird_text,
)


def _poison(data: dict[str, Any], value: Any, index: int) -> dict[str, Any]:
    """The call with one of its fields replaced by a value that is not text at all."""
    keys = sorted(data)
    return {**data, keys[index % len(keys)]: value} if keys else data


def _with(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Calls with the required fields, some optional ones; one in eight with a non-text value."""
    calls = st.builds(
        lambda r, o: {**r, **o},
        st.fixed_dictionaries(required),
        st.fixed_dictionaries({}, optional={"config_entry_id": ENTRY_IDS, **optional}),
    )
    poisoned = st.builds(_poison, calls, NON_TEXT, st.integers(0, 10))
    return st.one_of(*[calls] * 7, poisoned)


_payment = st.fixed_dictionaries(
    {"tenant": TENANTS, "amount": AMOUNTS},
    optional={"method": METHODS, "reference": REFERENCES, "note": _weird_text, "x": st.integers()},
)
#: A payment that is valid, so that whole batches are accepted now and then.
_good_payment = st.fixed_dictionaries(
    {
        "tenant": st.sampled_from(["t1", "t2", "t3"]),
        "amount": st.decimals(min_value="0.01", max_value=1000, places=2).map(str),
    },
    optional={"method": st.sampled_from(PAYMENT_METHODS), "reference": REFERENCES},
)
ACTIONS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "top_up": _with(
        {"tenant": TENANTS, "amount": AMOUNTS},
        {"method": METHODS, "reference": REFERENCES, "note": _weird_text},
    ),
    "top_up_batch": _with(
        {
            "payments": st.one_of(
                st.lists(_payment, max_size=4),
                st.lists(_good_payment, min_size=1, max_size=3),
                st.lists(st.one_of(_good_payment, _payment), min_size=1, max_size=3),
                st.just([]),
                NON_TEXT,
            )
        },
        {},
    ),
    "refund": _with(
        {"tenant": TENANTS, "amount": AMOUNTS},
        {"method": METHODS, "reference": REFERENCES, "force": BOOLS, "note": _weird_text},
    ),
    "adjust_balance": _with(
        {"tenant": TENANTS, "amount": AMOUNTS, "reason": _weird_text}, {"reference": REFERENCES}
    ),
    "settle_account": _with(
        {"tenant": TENANTS}, {"final_time": TIMES, "method": METHODS, "reference": REFERENCES}
    ),
    "record_reading": _with({"meter": METERS, "time": TIMES, "value": AMOUNTS}, {}),
    "import_readings": _with({}, {"csv": CSV, "file": FILES}),
    "reconciliation_report": _with({"start": TIMES, "end": TIMES}, {"write_file": BOOLS}),
    "generate_bill": _with(
        {}, {"tenant": TENANTS, "start": TIMES, "end": TIMES, "language": _weird_text}
    ),
    "recalculate_bill": _with(
        {"bill": st.one_of(st.integers(), AMOUNTS)}, {"language": _weird_text}
    ),
    "lock_supply": _with({"tenant": TENANTS}, {}),
    "force_supply": _with({"tenant": TENANTS}, {}),
    "release_supply": _with({"tenant": TENANTS}, {}),
    "emergency_credit": _with({"tenant": TENANTS}, {}),
    "share_costs": _with({}, {"start": TIMES, "end": TIMES}),
    "tenant_link": _with({"tenant": TENANTS}, {"valid_days": st.one_of(AMOUNTS, st.integers())}),
    "rotate_tenant_secret": _with({"tenant": TENANTS}, {}),
}


def test_every_action_is_fuzzed(hass: HomeAssistant) -> None:
    """The list above covers services.yaml: a new action must be added to the fuzzing."""
    services = Path(__file__).parents[2] / "custom_components" / DOMAIN / "services.yaml"
    names = {
        line.split(":")[0]
        for line in services.read_text(encoding="utf-8").splitlines()
        if line and not line[0].isspace() and not line.startswith("#")
    }
    assert names == set(ACTIONS)


async def _state(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    shown = await entry.runtime_data.store.run(picture, entry.entry_id)
    shown["options"] = json.dumps(dict(entry.options), sort_keys=True, default=str)
    tenants = entry.runtime_data.coordinator.data.tenants
    shown["tenants"] = {t: repr(vars(s)) for t, s in sorted(tenants.items())}
    return shown


def _schema_rejects(hass: HomeAssistant, action: str, data: dict[str, Any]) -> bool:
    schema = hass.services.async_services_for_domain(DOMAIN)[action].schema
    assert schema is not None
    try:
        schema(dict(data))
    except vol.Invalid:
        return True
    return False


@pytest.mark.parametrize("action", sorted(ACTIONS))
async def test_fuzz_action(
    hass: HomeAssistant, quiet_site: MockConfigEntry, tmp_path: Path, action: str
) -> None:
    """Refused calls are translated and change nothing; accepted ones keep the ledger sound."""
    hass.config.config_dir = str(tmp_path)
    (tmp_path / "readings").mkdir()
    entry = quiet_site
    store = entry.runtime_data.store
    loop = asyncio.get_running_loop()
    outcomes: Counter[str] = Counter()

    async def one(data: dict[str, Any]) -> None:
        if data.get("config_entry_id") == ENTRY:
            data = {**data, "config_entry_id": entry.entry_id}
        before = await _state(hass, entry)
        schema_refuses = _schema_rejects(hass, action, data)
        try:
            await hass.services.async_call(
                DOMAIN, action, dict(data), blocking=True, return_response=True
            )
        except vol.Invalid:
            assert schema_refuses, f"{action} raised vol.Invalid past its schema: {data!r}"
            outcomes["schema"] += 1
        except HomeAssistantError as err:
            key = (err.translation_domain, err.translation_key)
            assert key[0] == DOMAIN, f"{action} {data!r}: {err!r}"  # noqa: PT017
            assert key[1] in KEYS, f"{action} {data!r}: {key[1]}"
            outcomes[str(key[1])] += 1
        else:
            assert not schema_refuses
            outcomes["done"] += 1
            await store.run(sound, entry.entry_id)
            return
        await hass.async_block_till_done()
        after = await _state(hass, entry)
        assert after == before, f"{action} refused {data!r} but changed the site"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=ACTIONS[action])
    def fuzz(data: dict[str, Any]) -> None:
        asyncio.run_coroutine_threadsafe(one(data), loop).result(timeout=120)

    await hass.async_add_executor_job(fuzz)
    await store.run(sound, entry.entry_id)
    # The calls ran: the count is reported (docs/RELIABILITY.md) and must reach the target.
    print(f"fuzz {action}: {sum(outcomes.values())} calls {dict(outcomes)}")
    assert sum(outcomes.values()) >= min(EXAMPLES, 10)
