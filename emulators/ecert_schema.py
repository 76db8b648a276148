"""Request validation of the ИС ЭС emulator: the OpenAPI request schemas with the *intended* patterns (spec
§10.9, §14, §15) and the type-dependent presence rules of §12. Every violation becomes one ``EC00201`` entry."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError, field_validator

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[34][0-9a-fA-F]{3}-[89ab][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
Uuid = Annotated[str, StringConstraints(pattern=UUID_PATTERN, max_length=36)]
CertificateNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{25}$")]
Snils = Annotated[str, StringConstraints(pattern=r"^\d{11}$")]
Phone = Annotated[str, StringConstraints(pattern=r"^\d{10}$")]
Card = Annotated[str, StringConstraints(pattern=r"^\d{16,19}$")]
RecordId = Annotated[int, Field(ge=1, le=100)]
Kopecks = Annotated[int, Field(ge=0, le=999_999_999_999)]

CERTIFICATE_TYPES = ("ЕСТР0001", "ЕСТР0002", "ЕСТР0003", "ЕСТР0004")
PROGRAMS = ("ЕСРРАССТ", "ЕСРРАССС")
BLOCK_REASONS = ("EСВR0001", "EСВR0002", "EСВR0003", "EСВR0004", "EСВR0005", "EСВR9010", "EСВR9011")
TASK_TYPES = ("ec_create", "ec_status", "ec_edit", "ec_block", "ec_register_extract", "ec_condition_notice")

# §12: fields each certificate type fills; the others must be absent.
PRESENCE = {
    "ЕСТР0001": {"certificateAmount": False, "certificateQuantity": False, "maxAmount": True, "quantity": True},
    "ЕСТР0002": {"certificateAmount": True, "certificateQuantity": False, "maxAmount": False, "quantity": False},
    "ЕСТР0003": {"certificateAmount": True, "certificateQuantity": True, "maxAmount": True, "quantity": False},
    "ЕСТР0004": {"certificateAmount": True, "certificateQuantity": False, "maxAmount": False, "quantity": True},
}


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Organization(_Closed):
    rid: Annotated[str, StringConstraints(pattern=r"^[a-zA-Zа-яА-Я0-9]{8}$")]
    fullname: Annotated[str, StringConstraints(max_length=2000)]
    account: Annotated[str, StringConstraints(pattern=r"^[a-zA-Zа-яА-Я0-9]{11}$")]
    INN: Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$")]
    KPP: Annotated[str, StringConstraints(pattern=r"^[0-9]{9}$")]


class GoodsWorkService(BaseModel):
    # No additionalProperties restriction in the source.
    model_config = ConfigDict(strict=True)

    code: Annotated[str, StringConstraints(min_length=15, max_length=30)]
    name: Annotated[str, StringConstraints(max_length=1000)]
    maxAmount: Kopecks | None = None
    quantity: Annotated[int, Field(ge=0, le=99_999_999)] | None = None


def _date_time(value: str) -> str:
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


class Assignment(_Closed):
    pid: Snils
    phoneNumber: Phone
    organization: Organization
    mspCode: Annotated[str, StringConstraints(pattern=r"^\d{4}$")]
    lmspCode: Annotated[str, StringConstraints(min_length=20, max_length=20)] | None = None
    budgetaryClassificationCode: Annotated[str, StringConstraints(pattern=r"^\d{20}$")]
    startDate: str
    endDate: str
    nationalPaymentInstrument: Card
    certificateType: Literal[CERTIFICATE_TYPES]  # type: ignore[valid-type]
    program: Literal[PROGRAMS]  # type: ignore[valid-type]
    certificateAmount: Annotated[int, Field(ge=1, le=999_999_999_999)] | None = None
    certificateQuantity: Annotated[int, Field(ge=0, le=99_999_999)] | None = None
    goodsWorksServices: Annotated[list[GoodsWorkService], Field(min_length=1)]

    _dates = field_validator("startDate", "endDate")(_date_time)


class CreateRow(_Closed):
    recordId: RecordId
    assignment: Assignment


class EditRow(_Closed):
    recordId: RecordId
    factAssignmentUuid: Uuid
    certificateNumber: CertificateNumber
    pid: Snils | None = None
    phoneNumber: Phone | None = None
    nationalPaymentInstrument: Card | None = None


class BlockRow(_Closed):
    recordId: RecordId
    factAssignmentUuid: Uuid
    certificateNumber: CertificateNumber
    blockReason: Literal[BLOCK_REASONS]  # type: ignore[valid-type]


class TasksStatusRequest(_Closed):
    Request_Types: Annotated[list[str], Field(min_length=1)]
    Task_Quantity: Annotated[int, Field(ge=1, le=100)]


class TaskRef(_Closed):
    taskId: Uuid


class ResultsRequest(_Closed):
    eCertificateRequest_TaskResult: Annotated[list[TaskRef], Field(min_length=1, max_length=100)]


def _batch(row: type[BaseModel]) -> TypeAdapter[Any]:
    return TypeAdapter(Annotated[list[row], Field(min_length=1, max_length=100)])  # type: ignore[valid-type]


BATCHES: dict[str, TypeAdapter[Any]] = {"ec_create": _batch(CreateRow), "ec_edit": _batch(EditRow), "ec_block": _batch(BlockRow)}
BODIES: dict[str, TypeAdapter[Any]] = {
    "ec_tasks_status": TypeAdapter(TasksStatusRequest),
    "ec_tasks_result": TypeAdapter(ResultsRequest),
}


def violations(adapter: TypeAdapter[Any], value: Any) -> tuple[Any, list[str]]:
    """(validated value, []) or (None, one message per violation)."""
    try:
        return adapter.validate_python(value), []
    except ValidationError as exc:
        return None, [f"{'/'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()]


def presence_violations(rows: list[CreateRow]) -> list[str]:
    """The §12 rules: which amount and quantity fields each certificate type must and must not fill."""
    problems = []
    for index, row in enumerate(rows):
        assignment = row.assignment
        rules = PRESENCE[assignment.certificateType]
        where = f"{index}/assignment"
        for name in ("certificateAmount", "certificateQuantity"):
            if (getattr(assignment, name) is not None) != rules[name]:
                problems.append(f"{where}/{name}: {'required' if rules[name] else 'not allowed'} for {assignment.certificateType}")
        for position, item in enumerate(assignment.goodsWorksServices):
            for name in ("maxAmount", "quantity"):
                if (getattr(item, name) is not None) != rules[name]:
                    problems.append(
                        f"{where}/goodsWorksServices/{position}/{name}: "
                        f"{'required' if rules[name] else 'not allowed'} for {assignment.certificateType}"
                    )
    return problems
