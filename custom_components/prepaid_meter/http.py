"""Bill documents served by Home Assistant's HTTP server, to logged-in administrators only.

``/api/prepaid_meter/bill/{id}.html`` and ``.pdf`` (``?lang=zh-Hans`` for
Simplified Chinese). A document is made once from the stored bill data and
kept, so the same bytes are served every time after.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web
from homeassistant.components.http.const import KEY_HASS_USER
from homeassistant.config_entries import ConfigEntryState
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from .const import DOMAIN
from .coordinator import PrepaidConfigEntry
from .documents import language, render_html, render_pdf, user_template
from .store import bills

BILL_URL = "/api/prepaid_meter/bill/{bill_id}.{fmt}"
CONTENT_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}


def bill_url(bill_id: int, fmt: str = "html") -> str:
    """Where an issued bill is served."""
    return BILL_URL.format(bill_id=bill_id, fmt=fmt)


class BillView(HomeAssistantView):
    """An issued bill as HTML or PDF."""

    url = r"/api/prepaid_meter/bill/{bill_id:\d+}.{fmt:(html|pdf)}"
    name = "api:prepaid_meter:bill"
    requires_auth = True

    async def get(self, request: web.Request, bill_id: str, fmt: str) -> web.StreamResponse:
        """Serve the document if the user is an administrator and the bill exists."""
        user = request[KEY_HASS_USER]
        if not user.is_admin:
            return self.json_message("admin only", HTTPStatus.FORBIDDEN)
        hass = request.app[KEY_HASS]
        lang = language(request.query.get("lang") or hass.config.language)
        template = (
            await hass.async_add_executor_job(user_template, hass.config.config_dir)
            if fmt == "html"
            else None
        )

        def make(doc: dict[str, Any]) -> bytes:
            if fmt == "pdf":
                return render_pdf(doc, lang)
            return render_html(doc, lang, template).encode()

        entries: list[PrepaidConfigEntry] = [
            e
            for e in hass.config_entries.async_entries(DOMAIN)
            if e.state is ConfigEntryState.LOADED
        ]
        for entry in entries:
            content = await entry.runtime_data.store.run(
                bills.bill_file, int(bill_id), f"{fmt}:{lang}", make, site=entry.entry_id
            )
            if content is not None:
                return web.Response(
                    body=content,
                    headers={"Content-Type": CONTENT_TYPES[fmt], "Cache-Control": "private"},
                )
        return self.json_message("bill not found", HTTPStatus.NOT_FOUND)
