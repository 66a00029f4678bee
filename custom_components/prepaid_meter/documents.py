"""Bill documents: HTML from a Jinja2 template and a PDF from the same data (fpdf2).

Both read only the stored bill document (``engine.billing.Bill.to_dict``), so
a document made later shows exactly what was issued. The default template is
``templates/bill.html.j2``; a landlord's own template in
``<config>/prepaid_meter/templates/bill.html.j2`` is rendered in Jinja2's
``SandboxedEnvironment`` (no attribute access to Python internals).

The PDF needs a font with the CJK ideographs for Simplified Chinese: the first
one found of WenQuanYi Micro Hei (Debian ``fonts-wqy-microhei``), Noto Sans
CJK (``fonts-noto-cjk``) or Droid Sans Fallback. Without one, Latin text uses
DejaVu Sans, and failing that the PDF core font Helvetica, with characters it
cannot show replaced by ``?`` (the HTML document always works).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, Undefined, select_autoescape
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from .engine.billing import content_hash, usage_chart_svg

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "bill.html.j2"
#: Where a user's own template is looked for, under the config directory.
USER_TEMPLATE_DIR = "prepaid_meter/templates"
LANGUAGES = ("en", "zh-Hans")

CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
LATIN_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",)

_SECTIONS_EN = {
    "energy": "Energy",
    "demand": "Demand charge",
    "capacity": "Capacity charge",
    "standing": "Standing charge",
    "minimum": "Minimum charge",
    "shared": "Common-area share",
    "loss": "Line-loss share",
    "fees": "Fee",
    "tax": "Tax",
}
_SECTIONS_ZH = {
    "energy": "电量电费",
    "demand": "需量电费",
    "capacity": "容量电费",
    "standing": "固定费用",
    "minimum": "最低消费补足",
    "shared": "公摊费用",
    "loss": "线损分摊",
    "fees": "其他费用",
    "tax": "税费",
}

LABELS: Mapping[str, Mapping[str, Any]] = {
    "en": {
        "bill": "Bill",
        "revision": "revision",
        "issued": "Issued",
        "tenant": "Tenant",
        "prepaid": "prepaid",
        "postpaid": "postpaid",
        "period": "Billing period",
        "days": "days",
        "part_period": "part period",
        "due": "Due",
        "meters": "Meter readings",
        "meter": "Meter",
        "start_reading": "Start",
        "end_reading": "End",
        "used": "Used",
        "charges": "Charges",
        "item": "Item",
        "quantity": "Quantity",
        "unit_price": "Unit price",
        "amount": "Amount",
        "subtotal": "Subtotal",
        "total": "Total",
        "shared_pending": "Common-area and line-loss shares: not shared on this site yet.",
        "replaces": "This revision replaces a bill of",
        "difference": "difference",
        "account": "Account",
        "opening": "Opening balance",
        "top_ups": "Top-ups and payments",
        "deducted": "Charged",
        "refunds": "Refunds",
        "adjustments": "Adjustments",
        "closing": "Closing balance",
        "prepaid_statement": "Prepaid: this total equals what was deducted from your balance "
        "in this period.",
        "amount_due": "Amount due",
        "usage": "Use",
        "energy": "Energy used",
        "daily_average": "daily average",
        "footer": "Issued bills are never changed; corrections are issued as revisions.",
        "sections": _SECTIONS_EN,
    },
    "zh-Hans": {
        "bill": "账单",
        "revision": "修订",
        "issued": "开具日期",
        "tenant": "租户",
        "prepaid": "预付费",
        "postpaid": "后付费",
        "period": "账期",
        "days": "天",
        "part_period": "非完整账期",
        "due": "付款截止",
        "meters": "电表读数",
        "meter": "电表",
        "start_reading": "起始读数",
        "end_reading": "结束读数",
        "used": "用量",
        "charges": "费用明细",
        "item": "项目",
        "quantity": "数量",
        "unit_price": "单价",
        "amount": "金额",
        "subtotal": "小计",
        "total": "合计",
        "shared_pending": "公摊及线损：本站点尚未分摊。",
        "replaces": "本修订版替代原账单金额",
        "difference": "差额",
        "account": "账户",
        "opening": "期初余额",
        "top_ups": "充值及付款",
        "deducted": "扣费",
        "refunds": "退款",
        "adjustments": "调整",
        "closing": "期末余额",
        "prepaid_statement": "预付费：本账单合计等于本期从您余额中扣除的金额。",
        "amount_due": "应付金额",
        "usage": "用电",
        "energy": "本期用量",
        "daily_average": "日均",
        "footer": "已开具的账单不会更改；更正以修订版形式开具。",
        "sections": _SECTIONS_ZH,
    },
}


def language(lang: str | None) -> str:
    """A supported language for a requested one (``zh``, ``zh-CN`` -> ``zh-Hans``)."""
    if lang and lang.lower().startswith("zh"):
        return "zh-Hans"
    return "en"


def _num(value: object, places: int = 2) -> str:
    """A decimal string shown with ``places`` decimals (display only, never money maths)."""
    if value is None or value == "":
        return "–"
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return f"{amount:.{places}f}"


def _dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _setup(env: Environment) -> Environment:
    env.filters["num"] = _num
    env.filters["dec"] = _dec
    return env


class _DocumentEnvironment(Environment):
    """Jinja2 for the default template, whose data is the bill document: plain dicts.

    ``bill.total`` in a template is looked up as an attribute first and as a
    key only after the attribute lookup has raised; on a dict that exception
    is the common case and about half the cost of rendering a bill. Here a
    dict's key comes first (the template uses no dict methods).
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


@functools.cache
def _default_env() -> Environment:
    return _setup(
        _DocumentEnvironment(
            loader=FileSystemLoader(TEMPLATE_DIR),
            autoescape=select_autoescape(["j2", "html"], default=True),
            trim_blocks=True,
            lstrip_blocks=True,
            # The template ships with the integration and changes only with it:
            # compiled once, not checked on disk again at every bill of a run.
            auto_reload=False,
        )
    )


def _context(doc: Mapping[str, Any], lang: str) -> dict[str, Any]:
    history = [(h["month"], Decimal(h["energy"])) for h in doc.get("history", [])]
    return {
        "bill": doc,
        "lang": lang,
        "t": LABELS[lang],
        "chart": Markup(usage_chart_svg(history, doc.get("unit", "kWh"))),
        "hash": content_hash(doc),
    }


class BillTemplateError(Exception):
    """A landlord's own bill template failed; the text says why. Nothing was issued."""


#: How many loop items (``range``) and characters (``*``) a user template may make.
USER_TEMPLATE_BUDGET = 100_000


class _BillSandbox(SandboxedEnvironment):
    """Jinja2's sandbox with a budget, so that a template cannot run for ever or fill memory.

    The sandbox already refuses Python internals (``__class__``, ``__globals__``)
    and has no loader, so ``include``, ``import`` and ``extends`` find no files.
    On top of it: every ``range`` of one render draws from one budget of loop
    items (nested loops multiply, the budget does not), repetition and powers
    are bounded, and ``lipsum`` is gone.
    """

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self) -> None:
        super().__init__(autoescape=True, trim_blocks=True, lstrip_blocks=True)
        self.globals.pop("lipsum", None)
        self.globals["range"] = self._range
        self._left = USER_TEMPLATE_BUDGET

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        """Refuse an internal attribute at once (the stock sandbox prints it as empty)."""
        raise SecurityError(f"access to {attribute!r} of a {type(obj).__name__} is not allowed")

    def _range(self, *args: int) -> range:
        items = range(*args)
        self._left -= len(items)
        if self._left < 0:
            raise BillTemplateError(f"loops over more than {USER_TEMPLATE_BUDGET} items")
        return items

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and max(abs(left).bit_length(), 1) * right > 4096  # a number of over 4096 bits
        ):
            raise BillTemplateError("power too large")
        if operator == "*" and any(
            isinstance(seq, str | list | tuple)
            and isinstance(n, int)
            and len(seq) * n > USER_TEMPLATE_BUDGET
            for seq, n in ((left, right), (right, left))
        ):
            raise BillTemplateError("repetition too large")
        return super().call_binop(context, operator, left, right)


def render_html(doc: Mapping[str, Any], lang: str = "en", user_template: str | None = None) -> str:
    """The bill as HTML: the default template, or a user's template in a sandbox.

    Whatever goes wrong in a user's template (syntax, a refused attribute, a
    budget spent) is raised as ``BillTemplateError``.
    """
    lang = language(lang)
    if user_template is not None:
        try:
            env = _setup(_BillSandbox())
            return env.from_string(user_template).render(_context(doc, lang))
        except BillTemplateError:
            raise
        except Exception as err:  # anything a template can raise: all of it is the template's
            raise BillTemplateError(f"{type(err).__name__}: {err}"[:300]) from err
    return _default_env().get_template(TEMPLATE_NAME).render(_context(doc, lang))


def user_template(config_dir: str) -> str | None:
    """A landlord's own bill template, if there is one (read in an executor)."""
    path = Path(config_dir) / USER_TEMPLATE_DIR / TEMPLATE_NAME
    return path.read_text(encoding="utf-8") if path.is_file() else None


@functools.cache
def find_font() -> tuple[str | None, bool]:
    """The font file the PDF uses and whether it has CJK glyphs (None: core Helvetica)."""
    for path in CJK_FONTS:
        if Path(path).is_file():
            return path, True
    for path in LATIN_FONTS:
        if Path(path).is_file():
            return path, False
    return None, False


def render_pdf(doc: Mapping[str, Any], lang: str = "en") -> bytes:
    """The bill as a one- or two-page A4 PDF, from the same data as the HTML."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    lang = language(lang)
    t = LABELS[lang]
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime.fromisoformat(doc["issued_at"]))
    pdf.set_title(f"{t['bill']} {doc['number']}")
    font, cjk = find_font()
    if font is not None:
        pdf.add_font("billfont", fname=font)
        family = "billfont"
    else:
        family = "helvetica"

    def text(value: object) -> str:
        s = str(value)
        if font is None or (not cjk and lang != "en"):
            return s.encode("latin-1", "replace").decode("latin-1")
        return s

    pdf.add_page()
    pdf.set_font(family, size=16)
    pdf.cell(0, 9, text(doc["site"]["name"]), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(family, size=10)
    revision = f"  ({t['revision']} {doc['revision']})" if doc["revision"] > 1 else ""
    issued = doc.get("issued_local") or doc["issued_at"][:10]  # older bills: the UTC date
    head = f"{t['bill']} {doc['number']}{revision}   {t['issued']} {issued}"
    pdf.cell(0, 6, text(head), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    tenant = doc["tenant"]
    period = doc["period"]
    pdf.cell(0, 6, text(f"{t['tenant']}: {tenant['name']} ({tenant['id']}, {t[tenant['mode']]})"),
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
    days = f"{_num(period['days'])} {t['days']}"
    line = f"{t['period']}: {period['start_local']} - {period['end_local']} ({days})"
    if doc.get("due_at"):
        line += f"   {t['due']} {doc.get('due_local') or doc['due_at'][:10]}"
    pdf.cell(0, 6, text(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)

    def row(cells: list[str], widths: list[int], bold: bool = False) -> None:
        pdf.set_font(family, size=11 if bold else 9)
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            pdf.cell(width, 6, text(cell), border="B", align="L" if i == 0 else "R")
        pdf.ln()

    meter_w = [70, 40, 40, 40]
    row([t["meter"], t["start_reading"], t["end_reading"], f"{t['used']} ({doc['unit']})"], meter_w)
    for m in doc["meters"]:
        row([m["name"], m["start"] or "-", m["end"] or "-", m["used"]], meter_w)
    pdf.ln(3)
    widths = [80, 40, 30, 40]
    row([t["item"], t["quantity"], t["unit_price"], f"{t['amount']} ({doc['currency']})"], widths)
    for ln in doc["lines"]:
        label = t["sections"].get(ln["section"], ln["section"])
        if ln["label"] and ln["label"] != ln["section"]:
            label += f": {ln['label']}"
        price = (
            f"{_num(Decimal(ln['unit_price']) * 100)} %"
            if ln["section"] == "tax"
            else _num(ln["unit_price"], 4)
        )
        row([label, f"{_num(ln['quantity'])} {ln['unit']}", price, ln["amount"]], widths)
    row([t["subtotal"], "", "", doc["subtotal"]], widths)
    row([t["total"], "", "", f"{doc['total']} {doc['currency']}"], widths, bold=True)
    if doc.get("replaces_total"):
        pdf.set_font(family, size=9)
        note = f"{t['replaces']} {doc['replaces_total']}; {t['difference']} {doc['difference']}"
        pdf.cell(0, 6, text(note), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    wallet = doc["wallet"]
    acc_w = [80, 40]
    row([t["account"], doc["currency"]], acc_w)
    for key in ("opening", "top_ups", "deducted", "refunds", "adjustments", "closing"):
        row([t[key], wallet[key]], acc_w)
    pdf.set_font(family, size=9)
    if tenant["mode"] == "prepaid" and doc["matches_deducted"]:
        pdf.multi_cell(0, 5, text(t["prepaid_statement"]), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    elif tenant["mode"] == "postpaid":
        pdf.cell(0, 6, text(f"{t['amount_due']}: {doc['amount_due']} {doc['currency']}"),
                 new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
    pdf.ln(2)
    pdf.cell(0, 6, text(f"{t['energy']}: {_num(doc['energy'])} {doc['unit']}   "
                        f"{t['daily_average']}: {doc['daily_average']} {doc['unit']}"),
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
    _pdf_chart(pdf, doc, family)
    return bytes(pdf.output())


def _pdf_chart(pdf: Any, doc: Mapping[str, Any], family: str) -> None:
    """The 12-month use chart as PDF rectangles."""
    history = doc.get("history", [])
    if not history:
        return
    top = max(Decimal(h["energy"]) for h in history) or Decimal(1)
    x0, y0, height, bar = pdf.l_margin, pdf.get_y() + 2, 30.0, 10.0
    pdf.set_fill_color(59, 130, 246)
    pdf.set_font(family, size=7)
    for i, h in enumerate(history):
        size = float(Decimal(height) * Decimal(h["energy"]) / top)
        x = x0 + i * (bar + 3)
        if size > 0:
            pdf.rect(x, y0 + height - size, bar, size, style="F")
        pdf.text(x + 1, y0 + height + 4, h["month"][5:])
    pdf.set_y(y0 + height + 6)
