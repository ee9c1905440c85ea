"""A report's acceptance-to-first-delivery time is observed once, however many deliveries follow."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import REGISTRY

from gridline.contracts.v1 import common_pb2
from gridline.timestamps import now, to_timestamp
from services.notify import storage
from tests.notify.test_delivery import Parts, notice, parts, settings
from tests.notify.vendors import Vendors

__all__ = ["parts", "settings"]

NAME = "gridline_notify_report_first_delivery_seconds"


def observed() -> tuple[float, float]:
    """The histogram's count and sum."""
    count = REGISTRY.get_sample_value(f"{NAME}_count") or 0.0
    total = REGISTRY.get_sample_value(f"{NAME}_sum") or 0.0
    return count, total


async def test_only_the_first_delivery_about_a_report_is_timed(
    parts: Parts, vendors: Vendors
) -> None:
    deliverer, db, _, _ = parts
    accepted_at = now() - timedelta(seconds=3)
    about_report = [
        notice("g-wecom"),
        notice("g-office", level=common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE),
    ]
    for n in about_report:
        n.report_id = "r-first-delivery"
        n.report_accepted_at.CopyFrom(to_timestamp(accepted_at))
    unrelated = notice("g-wecom")
    count, total = observed()

    for n in [*about_report, unrelated]:
        await deliverer.deliver(n)

    assert len(vendors.of("wecom", ok=True)) == 3
    new_count, new_total = observed()
    assert new_count == count + 1
    assert 3 <= new_total - total < 30
    async with db.session() as session:
        first = await session.get(storage.FirstDelivery, "r-first-delivery")
    assert first is not None
    assert first.notification_id == about_report[0].notification_id
