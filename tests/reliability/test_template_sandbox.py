"""A landlord's own bill template cannot leave Jinja2's sandbox, read files or run for ever.

Each hostile template is put where documents.user_template finds it, a bill is
asked for, and the action must refuse with the translated
``bill_template_failed`` error, issue nothing, post nothing and touch no file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry
from sqlalchemy.orm import Session

from custom_components.prepaid_meter.const import DOMAIN
from custom_components.prepaid_meter.documents import TEMPLATE_NAME, USER_TEMPLATE_DIR
from custom_components.prepaid_meter.store.models import BillFile
from tests.reliability.conftest import picture

SECRET = "db_password=hunter2"

HOSTILE = {
    "mro": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "class_only": "{{ bill.__class__ }}",
    "globals": "{{ cycler.__init__.__globals__.os.system('touch PWNED') }}",
    "joiner_globals": "{{ joiner.__init__.__globals__['__builtins__'] }}",
    "format_globals": "{{ ''.format.__globals__ }}",
    "namespace_dict": "{{ namespace.__dict__ }}",
    "open_file": "{{ open('SECRET').read() }}",
    "include_file": "{% include 'SECRET' %}",
    "include_absolute": "{% include '/etc/passwd' %}",
    "import": "{% import 'os' as os %}{{ os.system('touch PWNED') }}",
    "from_import": "{% from 'subprocess' import run %}{{ run('touch PWNED') }}",
    "extends": "{% extends '../../secrets.yaml' %}",
    "huge_range": "{% for i in range(10**9) %}x{% endfor %}",
    "nested_loops": "{% for i in range(2000) %}{% for j in range(2000) %}.{% endfor %}{% endfor %}",
    "repeat": "{{ 'x' * 10**9 }}",
    "power": "{{ 10 ** 64 ** 64 ** 64 ** 64 ** 64 }}",
    "lipsum": "{{ lipsum(10**6) }}",
    "syntax": "{% for %}",
}


def _place(config_dir: Path, text: str) -> None:
    folder = config_dir / USER_TEMPLATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TEMPLATE_NAME).write_text(text, encoding="utf-8")


async def test_an_ordinary_user_template_is_used(
    hass: HomeAssistant, quiet_site: MockConfigEntry, tmp_path: Path
) -> None:
    """The control: the sandbox still renders a landlord's template, loops and all."""
    hass.config.config_dir = str(tmp_path)
    _place(
        tmp_path,
        "<h1>{{ bill.tenant_name }}</h1>{% for i in range(3) %}<i>{{ i }}</i>{% endfor %}"
        "{{ bill.not_a_field }}{{ '-' * 10 }}",
    )
    answer = await hass.services.async_call(
        DOMAIN, "generate_bill", {"tenant": "t1"}, blocking=True, return_response=True
    )
    assert answer is not None
    (bill,) = answer["bills"]

    def html(session: Session) -> str:
        row = session.get(BillFile, (bill["bill_id"], "html:en"))
        assert row is not None
        return row.content.decode()

    document = await quiet_site.runtime_data.store.run(html)
    assert "<i>0</i><i>1</i><i>2</i>" in document
    assert "-" * 10 in document


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_template_fails_safely(
    hass: HomeAssistant, quiet_site: MockConfigEntry, tmp_path: Path, name: str
) -> None:
    hass.config.config_dir = str(tmp_path)
    (tmp_path / "SECRET").write_text(SECRET, encoding="utf-8")
    _place(tmp_path, HOSTILE[name])
    store = quiet_site.runtime_data.store
    before = await store.run(picture, quiet_site.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "generate_bill", {"tenant": "t1"}, blocking=True, return_response=True
        )
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "bill_template_failed"
    assert SECRET not in str(err.value.translation_placeholders)
    assert await store.run(picture, quiet_site.entry_id) == before
    assert not (tmp_path / "PWNED").exists()
    assert not Path("PWNED").exists()
