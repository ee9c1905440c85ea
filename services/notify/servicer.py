"""Notify's gRPC service: the same delivery status as `GET /v1/notifications/{id}`, for staff
whose role may read it (`gridline.staff`)."""

from __future__ import annotations

import grpc

from gridline.contracts.v1 import notify_pb2, notify_pb2_grpc
from gridline.db import Database
from gridline.rpc import abort
from gridline.staff.identity import Staff
from gridline.staff.roles import Permission
from gridline.staff.rpc import governed, staff_method
from gridline.staff.tokens import TokenVerifier
from gridline.timestamps import to_timestamp
from services.notify import storage


@governed(notify_pb2.DESCRIPTOR.services_by_name["Notify"])
class NotifyServicer(notify_pb2_grpc.NotifyServicer):
    """Reads the delivery log."""

    def __init__(self, db: Database, staff_tokens: TokenVerifier) -> None:
        self._db = db
        self.staff_tokens = staff_tokens

    @staff_method
    async def GetDeliveries(
        self,
        request: notify_pb2.GetDeliveriesRequest,
        context: grpc.aio.ServicerContext,
        staff: Staff,
    ) -> notify_pb2.GetDeliveriesResponse:
        """Every channel's delivery of a notification, with each attempt."""
        staff.require(Permission.DELIVERIES_READ)
        if not request.notification_id:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "notification_id is required")
        async with self._db.session() as session:
            found = await storage.deliveries_with_attempts(session, request.notification_id)
        if not found:
            await abort(
                context, grpc.StatusCode.NOT_FOUND, f"no deliveries of {request.notification_id}"
            )
        return notify_pb2.GetDeliveriesResponse(
            notification_id=request.notification_id,
            deliveries=[
                notify_pb2.ChannelDelivery(
                    channel=row.channel,
                    group_id=row.group_id,
                    outcome=row.outcome,
                    attempts=row.attempts,
                    error=row.error,
                    finished_at=to_timestamp(row.finished_at),
                    attempt_log=[
                        notify_pb2.DeliveryAttempt(
                            number=a.number, at=to_timestamp(a.at), ok=a.ok, error=a.error
                        )
                        for a in attempts
                    ],
                )
                for row, attempts in found
            ],
        )
