"""The asynchronous message store: accepting messages durably, selecting them, and moving them between states.

Every state change writes the message's new state, its logging-journal row and, when the sender asked for
status changes, the status notification task, in one transaction.
"""
from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, and_, insert, select, update

from gateway.store.models import AsyncMessage, DeliveryTask
from journals.group_commit import GroupCommit, MultiRowInsert
from journals.logging_journal import JournalRecord, LoggingJournal
from registry.snapshot import RegistrySnapshot

ON_DELIVERY, DELIVERED, NOT_DELIVERED, DELIVERY_STOPPED = "ON_DELIVERY", "DELIVERED", "NOT_DELIVERED", "DELIVERY_STOPPED"
MESSAGE_TASK, STATUS_TASK = "MESSAGE", "STATUS"
POLL_TASK = "POLL"  # an adapter's result still pending at its backend, asked for again on a schedule
PENDING, DONE, FAILED = "PENDING", "DONE", "FAILED"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StoredMessage:
    """A row of the message store, read-only."""

    message_id: str
    correlation_id: str
    service_id: str
    message_type: str
    route_id: str | None
    message_date: str
    sender_id: str
    recipient_id: str
    properties: list[list[str]]
    data: str
    delivery_mode: str
    state: str
    fetched: bool
    receive_status: str | None
    session_id: str
    accepted_at: datetime
    state_changed_at: datetime
    last_error: str | None

    @classmethod
    def of(cls, row: AsyncMessage) -> StoredMessage:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Completion:
    """A delivery the recipient answered: its task is done; a PUSHed message may be DELIVERED with it."""

    task_id: int
    lease_owner: str
    message: StoredMessage | None  # None for a status notification
    delivered: bool
    notify_point_id: int | None
    sent_at: datetime


@dataclass(frozen=True)
class Acceptance:
    """Everything stored when a message is accepted."""

    message: dict[str, object]
    journal: JournalRecord
    push_point_id: int | None


def journal_record(message: StoredMessage | dict[str, object], state: str, **extra: object) -> JournalRecord:
    """The logging-journal row of ``message`` entering ``state``."""
    get = message.get if isinstance(message, dict) else message.__getattribute__
    return JournalRecord(
        channel="ASYNC",
        state=state,
        message_id=get("message_id"),
        correlation_id=get("correlation_id"),
        message_type=get("message_type"),
        sender=get("sender_id"),
        recipient=get("recipient_id"),
        service_id=get("service_id"),
        route_id=get("route_id"),
        session_id=get("session_id"),
        **extra,
    )


def status_notification_point(snapshot: RegistrySnapshot, message: StoredMessage) -> int | None:
    """Where the sender of ``message`` receives status changes, if its service asks for them."""
    service = snapshot.services.get(message.service_id)
    sender = snapshot.senders.get(message.sender_id)
    if service is None or sender is None or not service.status_change_notification:
        return None
    return sender.response_delivery_point_id


class MessageStore:
    """Reads and writes the asynchronous channel's messages and delivery tasks."""

    def __init__(self, engine: Engine, journal: LoggingJournal) -> None:
        self._engine = engine
        self._journal = journal
        self._messages = MultiRowInsert(engine, AsyncMessage.__table__)
        self._tasks = MultiRowInsert(engine, DeliveryTask.__table__)
        self._accepts: GroupCommit[Acceptance] = GroupCommit(engine, self._write_acceptances)
        self._completions: GroupCommit[Completion] = GroupCommit(engine, self._write_completions)

    def accept(self, acceptance: Acceptance) -> None:
        """Store the message, its delivery task (PUSH) and its journal row in one transaction; return once
        committed. Concurrent acceptances share transactions."""
        self._accepts.submit(acceptance)

    async def accept_async(self, acceptance: Acceptance) -> None:
        """:meth:`accept` for a coroutine: the loop goes on while the process's writer commits."""
        await self._accepts.submit_async(acceptance)

    def _write_acceptances(self, connection: Connection, acceptances: list[Acceptance]) -> None:
        self._messages.execute(connection, [a.message for a in acceptances])
        tasks = [
            new_task(MESSAGE_TASK, str(a.message["message_id"]), a.push_point_id, a.message["accepted_at"])
            for a in acceptances
            if a.push_point_id is not None
        ]
        if tasks:
            self._tasks.execute(connection, tasks)
        self._journal.write_in(connection, [a.journal for a in acceptances])

    def complete(self, completion: Completion) -> None:
        """Record a successful delivery (group-committed with other workers' threads' completions)."""
        self._completions.submit(completion)

    async def complete_async(self, completion: Completion) -> None:
        """:meth:`complete` for a coroutine: the loop goes on while the process's writer commits."""
        await self._completions.submit_async(completion)

    def _write_completions(self, connection: Connection, completions: list[Completion]) -> None:
        for owner in {c.lease_owner for c in completions}:
            connection.execute(
                update(DeliveryTask)
                .where(DeliveryTask.id.in_([c.task_id for c in completions if c.lease_owner == owner]), DeliveryTask.lease_owner == owner)
                .values(state=DONE, attempts=DeliveryTask.attempts + 1, lease_owner=None, lease_until=None, last_error=None)
            )
        messages = [c for c in completions if c.message is not None]
        delivered = [c for c in messages if c.delivered and c.message.state != DELIVERED]
        if delivered:
            connection.execute(
                update(AsyncMessage)
                .where(AsyncMessage.message_id.in_([c.message.message_id for c in delivered]))
                .values(state=DELIVERED, state_changed_at=now())
            )
        self._journal.write_in(
            connection,
            [journal_record(c.message, DELIVERED if c.delivered else c.message.state, sent_at=c.sent_at) for c in messages],
        )
        notices = []
        for completion in delivered:
            if completion.notify_point_id is not None:
                task = new_task(STATUS_TASK, completion.message.message_id, completion.notify_point_id, completion.sent_at)
                task["notified_state"] = DELIVERED
                notices.append(task)
        if notices:
            self._tasks.execute(connection, notices)

    def begin(self) -> AbstractContextManager[Connection]:
        """A transaction for several state changes that must land together."""
        return self._engine.begin()

    def find(self, message_id: str) -> StoredMessage | None:
        with self._engine.connect() as connection:
            row = connection.execute(select(AsyncMessage).where(AsyncMessage.message_id == message_id)).first()
        return StoredMessage.of(row) if row else None

    def find_many(self, message_ids: list[str]) -> dict[str, StoredMessage]:
        with self._engine.connect() as connection:
            rows = connection.execute(select(AsyncMessage).where(AsyncMessage.message_id.in_(message_ids)))
            return {row.message_id: StoredMessage.of(row) for row in rows}

    def chain_request(self, correlation_id: str) -> StoredMessage | None:
        """The REQUEST that opened the chain ``correlation_id``."""
        query = select(AsyncMessage).where(
            AsyncMessage.correlation_id == correlation_id, AsyncMessage.message_type == "REQUEST"
        )
        with self._engine.connect() as connection:
            row = connection.execute(query.order_by(AsyncMessage.id).limit(1)).first()
        return StoredMessage.of(row) if row else None

    def select_for_recipient(
        self, recipient_id: str, service_id: str, message_id: str | None, correlation_id: str | None, amount: int
    ) -> list[StoredMessage]:
        """The three getMessages selection rules, oldest first, only messages addressed to ``recipient_id``.

        By ``messageId`` or ``correlationId`` any message of the recipient matches; without them, PULL messages
        not yet fetched and still on delivery."""
        conditions = [AsyncMessage.recipient_id == recipient_id, AsyncMessage.service_id == service_id]
        if message_id is not None:
            conditions.append(AsyncMessage.message_id == message_id)
        elif correlation_id is not None:
            conditions.append(AsyncMessage.correlation_id == correlation_id)
        else:
            conditions += [
                AsyncMessage.delivery_mode == "PULL",
                AsyncMessage.fetched.is_(False),
                AsyncMessage.state == ON_DELIVERY,
            ]
        query = select(AsyncMessage).where(and_(*conditions)).order_by(AsyncMessage.id).limit(amount)
        with self._engine.connect() as connection:
            return [StoredMessage.of(row) for row in connection.execute(query)]

    def mark_fetched(self, messages: list[StoredMessage], delivered: bool, notify_point_of: dict[str, int | None]) -> None:
        """Record that ``messages`` were handed out by getMessages; ``delivered`` moves them to DELIVERED."""
        with self._engine.begin() as connection:
            ids = [m.message_id for m in messages]
            connection.execute(update(AsyncMessage).where(AsyncMessage.message_id.in_(ids)).values(fetched=True))
            sent = now()
            for message in messages:
                if delivered and message.state == ON_DELIVERY:
                    self.change_state(connection, message, DELIVERED, notify_point_of.get(message.message_id), sent_at=sent)
                else:
                    self._journal.write_in(connection, [journal_record(message, message.state, sent_at=sent)])

    def change_state(
        self,
        connection: Connection,
        message: StoredMessage,
        state: str,
        notify_point_id: int | None,
        error: str | None = None,
        **journal_extra: object,
    ) -> None:
        """Move ``message`` to ``state`` within the caller's transaction: the row, its journal row, and the
        status notification task when ``notify_point_id`` names where the sender wants them."""
        changed_at = now()
        values: dict[str, object] = {"state": state, "state_changed_at": changed_at}
        if error is not None:
            values["last_error"] = error[:1000]
        connection.execute(update(AsyncMessage).where(AsyncMessage.message_id == message.message_id).values(**values))
        self._journal.write_in(connection, [journal_record(message, state, **journal_extra)])
        if notify_point_id is not None and state != message.state:
            task = new_task(STATUS_TASK, message.message_id, notify_point_id, changed_at)
            task["notified_state"] = state
            connection.execute(insert(DeliveryTask), task)

    @staticmethod
    def queue_push(connection: Connection, message_id: str, point_id: int) -> None:
        """Queue a new PUSH delivery of ``message_id`` to ``point_id``, due at once, within the caller's transaction
        (the recipient asked for the message again)."""
        connection.execute(DeliveryTask.__table__.insert(), new_task(MESSAGE_TASK, message_id, point_id, now()))

    def queued_for(self, connection: Connection, point_id: int, state: str) -> list[StoredMessage]:
        """Messages in ``state`` with a pending PUSH task to ``point_id``."""
        pending = select(DeliveryTask.message_id).where(
            DeliveryTask.delivery_point_id == point_id, DeliveryTask.state == PENDING, DeliveryTask.kind == MESSAGE_TASK
        )
        rows = connection.execute(select(AsyncMessage).where(AsyncMessage.message_id.in_(pending), AsyncMessage.state == state))
        return [StoredMessage.of(row) for row in rows]

    def stop_point(self, connection: Connection, point_id: int, snapshot: RegistrySnapshot) -> None:
        """A point was switched off: its queued messages are DELIVERY_STOPPED until it is back."""
        for message in self.queued_for(connection, point_id, ON_DELIVERY):
            self.change_state(connection, message, DELIVERY_STOPPED, status_notification_point(snapshot, message))

    def resume_point(self, connection: Connection, point_id: int, snapshot: RegistrySnapshot) -> None:
        """A point is back: its stopped messages are ON_DELIVERY again and due at once."""
        for message in self.queued_for(connection, point_id, DELIVERY_STOPPED):
            self.change_state(connection, message, ON_DELIVERY, status_notification_point(snapshot, message))
        connection.execute(
            update(DeliveryTask)
            .where(DeliveryTask.delivery_point_id == point_id, DeliveryTask.state == PENDING)
            .values(next_attempt_at=now())
        )

    def set_receive_status(self, connection: Connection, message_id: str, receive_status: str, refetch: bool) -> None:
        values: dict[str, object] = {"receive_status": receive_status}
        if refetch:
            values["fetched"] = False
        connection.execute(update(AsyncMessage).where(AsyncMessage.message_id == message_id).values(**values))


def new_task(kind: str, message_id: str, point_id: int | None, created_at: object) -> dict[str, object]:
    """A pending delivery task row, due at once."""
    return {
        "kind": kind,
        "message_id": message_id,
        "delivery_point_id": point_id,
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": created_at,
        "created_at": created_at,
    }


def new_message_id() -> str:
    return str(uuid.uuid4())
