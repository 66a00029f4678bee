"""A billing period's charges other than energy: standing, capacity, demand, minimum, their taxes.

Standing (and capacity) charges accrue into the wallet once a local day has
ended (`accrue`), posted at that midnight; demand and minimum charges are
known only when the period closes, so issuing the period's bill posts them
(`settle_period`), at the period's end. Both post what the tariff owes for the
period so far minus what the wallet was already charged for it (found from
the ledger, not from memory), so a restart, a repeated run or a bill issued
before midnight never charges anything twice, and a prepaid bill equals the
wallet's deductions of its period.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, localcontext
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from ..engine.calendars import BillingPeriod, local_midnight
from ..engine.rating import RATING_CONTEXT, Charge, accrue_standing, open_period
from ..engine.tariffs import Tariff
from .ledger import EXACT_PRECISION, _Accounts, closed_tenants, post_entry
from .models import Account, Assignment, JournalEntry, MeterReading, Posting, Tenant

ZERO = Decimal(0)

#: Entry references of period charges: ``standing:<tenant>:<until>``, ``close:<tenant>:<start>``.
STANDING = "standing:"
CLOSE = "close:"
#: The revenue accounts daily accrual posts to (the rest waits for the period's close).
ACCRUED = frozenset(
    {"revenue:standing", "revenue:capacity", "revenue:tax:standing", "revenue:tax:capacity"}
)


# When a tenant's occupancy began, in one statement (a bill run asks it for
# every tenant): its account's opening, and the earliest of its assigned
# meters' first readings (an index lookup each). Built once: composing a
# statement costs more than running this one.
_FIRST_READING = (
    select(func.min(MeterReading.taken_at))
    .where(MeterReading.site == Assignment.site, MeterReading.meter == Assignment.meter)
    .correlate(Assignment)
    .scalar_subquery()
)
_TENANCY_START = select(
    select(Tenant.opened_at)
    .where(Tenant.site == bindparam("site"), Tenant.id == bindparam("tenant"))
    .scalar_subquery(),
    select(func.min(_FIRST_READING))
    .where(Assignment.site == bindparam("site"), Assignment.tenant == bindparam("tenant"))
    .scalar_subquery(),
)


def tenancy_start(session: Session, site: str, tenant: str) -> datetime | None:
    """When the tenant's occupancy began: its account's opening, or its meters' first reading.

    Whichever is earlier: readings imported from before the account was opened
    (a site taken over with its history) count as the tenant's. None for a
    tenant the store does not know.
    """
    row = session.connection().execute(_TENANCY_START, {"site": site, "tenant": tenant}).one()
    # Both columns keep their type (UTCDateTime): aware UTC datetimes on every backend.
    times = [t for t in row if t is not None]
    return min(times) if times else None


# The same for a chunk of a bill run's tenants at once.
_TENANCY_STARTS = select(
    Tenant.id,
    Tenant.opened_at,
    select(func.min(_FIRST_READING))
    .where(Assignment.site == Tenant.site, Assignment.tenant == Tenant.id)
    .correlate(Tenant)
    .scalar_subquery(),
).where(Tenant.site == bindparam("site"), Tenant.id.in_(bindparam("tenants", expanding=True)))


def tenancy_starts(
    session: Session, site: str, tenants: Iterable[str]
) -> dict[str, datetime | None]:
    """`tenancy_start` of each of the tenants, in one statement for all of them."""
    wanted = list(dict.fromkeys(tenants))
    found: dict[str, datetime | None] = {}
    rows = session.connection().execute(_TENANCY_STARTS, {"site": site, "tenants": wanted})
    for tenant, *row in rows:
        times = [t for t in row if t is not None]
        found[tenant] = min(times) if times else None
    # One the store has no tenant row for is asked on its own (its meters may have readings).
    return {t: found[t] if t in found else tenancy_start(session, site, t) for t in wanted}


def occupied(
    session: Session, site: str, tenant: str, period: BillingPeriod, zone: ZoneInfo
) -> BillingPeriod | None:
    """The part of ``period`` from the tenant's occupancy on; None when it began after the period.

    Standing, capacity and minimum charges are owed for this part only (pro-rated
    against the whole cycle), so a tenant who moves in mid-period, or a site set up
    mid-period, is not charged for the days before. The move-in day counts whole
    (local midnight in ``zone``, the tariff's): standing charges are daily.
    """
    return occupied_from(tenancy_start(session, site, tenant), period, zone)


def occupied_from(
    start: datetime | None, period: BillingPeriod, zone: ZoneInfo
) -> BillingPeriod | None:
    """`occupied` for a tenancy that began at ``start`` (None: not known, the whole period)."""
    if start is not None:
        start = local_midnight(start.astimezone(zone).date(), zone)
    if start is None or start <= period.start:
        return period
    if start >= period.end:
        return None
    return period.part(start, period.end)


def has_period_charges(tariff: Tariff) -> bool:
    """Whether any version of the tariff has standing or capacity charges (accrued daily)."""
    return any(v.standing or v.capacity is not None for v in tariff.versions)


def _is_energy(c: Charge) -> bool:
    return c.kind == "energy" or (c.kind == "tax" and c.taxed_kind == "energy")


def energy_only(charges: Iterable[Charge]) -> list[Charge]:
    """The energy charges and their taxes (a period the tenant did not occupy owes nothing else)."""
    return [c for c in charges if _is_energy(c)]


def owed(charges: Iterable[Charge]) -> dict[str, Decimal]:
    """The non-energy charges (and taxes on them) by revenue account."""
    out: dict[str, Decimal] = {}
    with localcontext(RATING_CONTEXT):
        for c in charges:
            if _is_energy(c):
                continue
            code = f"revenue:tax:{c.taxed_kind}" if c.kind == "tax" else f"revenue:{c.kind}"
            out[code] = out.get(code, ZERO) + c.amount
    return out


def posted(session: Session, site: str, tenant: str, period: BillingPeriod) -> dict[str, Decimal]:
    """What the wallet was charged for the period's non-energy charges, by revenue account."""
    # Only the reference range in SQL: other conditions would tempt the
    # planner to walk the site's whole month of entries by time or tenant.
    ids: list[int] = []
    for prefix in (f"{STANDING}{tenant}:", f"{CLOSE}{tenant}:"):
        rows = session.execute(
            select(
                JournalEntry.id, JournalEntry.tenant, JournalEntry.kind, JournalEntry.created_at
            ).where(
                JournalEntry.site == site,
                JournalEntry.reference >= prefix,
                JournalEntry.reference < prefix[:-1] + ";",  # the character after ":"
            )
        )
        ids.extend(
            entry
            for entry, who, kind, at in rows
            if who == tenant and kind == "charge" and period.start < at <= period.end
        )
    if not ids:
        return {}
    rows = session.execute(
        select(Account.code, Posting.amount)
        .join(Posting, Posting.account_id == Account.id)
        .where(Posting.entry_id.in_(ids), Account.kind == "revenue")
    )
    out: dict[str, Decimal] = {}
    with localcontext(prec=EXACT_PRECISION):
        for code, amount in rows:
            out[code] = out.get(code, ZERO) + amount
    return out


def _post_difference(
    session: Session,
    site: str,
    tenant: str,
    due: Mapping[str, Decimal],
    done: Mapping[str, Decimal],
    at: datetime,
    reference: str,
    memo: str,
    codes: frozenset[str] | None = None,
) -> Decimal:
    """Post ``due - done`` per revenue account (of ``codes``, default all) against the wallet."""
    wanted = codes if codes is not None else frozenset({*due, *done})
    with localcontext(prec=EXACT_PRECISION):
        legs = {code: due.get(code, ZERO) - done.get(code, ZERO) for code in wanted}
        legs = {code: amount for code, amount in legs.items() if amount}
        total = sum(legs.values(), ZERO)
    if not legs:
        return ZERO
    accounts = _Accounts(session, site)
    post_entry(
        session,
        site=site,
        kind="charge",
        at=at,
        legs=[
            (accounts.wallet(tenant), -total),
            *((accounts.get(code, "revenue"), amount) for code, amount in sorted(legs.items())),
        ],
        tenant=tenant,
        reference=reference,
        memo=memo,
    )
    return total


def accrue(
    session: Session,
    site: str,
    items: Iterable[tuple[str, Tariff, BillingPeriod, datetime]],
) -> None:
    """Post each tenant's standing charges of its period up to ``until`` (a local midnight)."""
    closed = closed_tenants(session, site)
    for tenant, tariff, period, until in items:
        if tenant in closed:
            continue
        reference = f"{STANDING}{tenant}:{until.isoformat()}"
        exists = session.scalar(
            select(JournalEntry.id).where(
                JournalEntry.site == site, JournalEntry.reference == reference
            )
        )
        if exists is not None:
            continue
        part = occupied(session, site, tenant, period, tariff.zone)
        if part is None:
            continue
        rated = accrue_standing(tariff, open_period(tariff, part), until)
        _post_difference(
            session,
            site,
            tenant,
            owed(rated.charges),
            posted(session, site, tenant, period),
            until,
            reference,
            "standing charges",
            ACCRUED,
        )
    session.commit()


def settle_period(
    session: Session,
    site: str,
    tenant: str,
    period: BillingPeriod,
    charges: Iterable[Charge],
) -> Decimal:
    """At a bill's issue: post the period's non-energy charges not yet charged, at its end.

    Not committed here: the bill is stored in the same transaction.
    """
    due = owed(charges)
    if not due:  # energy (and its taxes) only: the polls charged all of it
        return ZERO
    amount = _post_difference(
        session,
        site,
        tenant,
        due,
        posted(session, site, tenant, period),
        period.end,
        f"{CLOSE}{tenant}:{period.start.isoformat()}",
        "period charges (standing, demand, minimum)",
    )
    session.flush()
    return amount
