"""Message and request schemas: pydantic models, JSON on the wire.

Envelope rule: adding an optional field keeps `schema_version`; any other change is a new version
served side by side.
"""
import hashlib
import time
import uuid
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints, ValidationError,
                      WithJsonSchema, field_validator, model_validator)

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
ProductId = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=128)]
UserId = ProductId  # the same safe alphabet
SCALARS = (str, int, float, bool)


def _no_nul(text: str) -> str:
    """PostgreSQL text cannot hold NUL: refused here rather than failing where it is stored."""
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


NoNul = AfterValidator(_no_nul)
Genre = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), NoNul]
# What the documents say a metadata value is; `ProductIn._flat_metadata` checks it.
_SCALAR_SCHEMA = {"type": ["string", "number", "boolean", "null"]}
MetadataValue = Annotated[object, WithJsonSchema({"anyOf": [_SCALAR_SCHEMA, {"type": "array", "items": _SCALAR_SCHEMA}]})]



def _date_time_text(value: object) -> object:
    """Only ISO 8601 text: pydantic would also take a number as seconds since 1970."""
    if value is not None and not isinstance(value, (str, datetime)):
        raise ValueError("an ISO 8601 date-time string, like 2026-11-20T18:30:00Z")
    return value


DateTime = Annotated[datetime, BeforeValidator(_date_time_text)]
Number = Annotated[float, Strict()]  # a JSON number, not a numeric string or a boolean
Count = Annotated[int, Strict()]

SCHEMA_VERSION = 1


class ProductIn(BaseModel):
    """A product as clients send it. Unknown fields are rejected (422): extras belong in `metadata`."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{
        "id": "tt0133093", "title": "The Matrix",
        "description": "A hacker learns that the world he lives in is a simulation and joins the rebellion.",
        "genres": ["Action", "Sci-Fi"], "year": 1999, "metadata": {"rating": 8.7, "director": "Wachowski"}}]})

    id: ProductId | None = None
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), NoNul]
    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000), NoNul]
    genres: list[Genre] = Field(default_factory=list, max_length=32)
    year: int | None = Field(None, ge=1800, le=2200)
    metadata: dict[Annotated[str, StringConstraints(max_length=128)], MetadataValue] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _flat_metadata(cls, metadata: dict) -> dict:
        """Metadata values are scalars (string, number, boolean, null) or lists of scalars, without NULs."""
        for key, value in metadata.items():
            items = value if isinstance(value, list) else [value]
            if not all(item is None or isinstance(item, SCALARS) for item in items):
                raise ValueError(f"metadata.{key} must be a string, number, boolean, null or a list of those")
            if "\x00" in key or any(isinstance(item, str) and "\x00" in item for item in items):
                raise ValueError(f"metadata.{key} must not contain NUL characters")
        return metadata


class ProductMessage(BaseModel):
    """One write to the catalogue, as published to the queue."""

    model_config = ConfigDict(extra="ignore")

    message_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    type: Literal["product.upsert", "product.delete"]
    schema_version: Literal[1] = SCHEMA_VERSION
    tenant_id: str
    product_id: ProductId
    version: int = Field(ge=0)
    sent_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    product: ProductIn | None = None

    @model_validator(mode="after")
    def _upsert_has_product(self) -> "ProductMessage":
        if self.type == "product.upsert" and self.product is None:
            raise ValueError("a product.upsert message needs a product")
        return self


InteractionType = Literal["purchase", "like", "dislike", "view", "rating"]


class InteractionIn(BaseModel):
    """One thing a user did with a product. `rating` needs a value 0.5-5; for a purchase the value is the
    quantity. `event_id` makes the write idempotent: a second write with the same id is ignored."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"product_id": "tt0133093", "type": "rating", "value": 4.5, "occurred_at": "2026-11-20T18:30:00Z",
         "event_id": "ev-1234"}]})

    product_id: ProductId
    type: InteractionType
    value: Number | None = Field(None, ge=0, le=1000)
    occurred_at: DateTime | None = None
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul] | None = None

    @model_validator(mode="after")
    def _rating_has_value(self) -> "InteractionIn":
        if self.type == "rating" and (self.value is None or not 0.5 <= self.value <= 5):
            raise ValueError("a rating needs a value between 0.5 and 5")
        if self.occurred_at is not None and self.occurred_at.tzinfo is None:
            self.occurred_at = self.occurred_at.replace(tzinfo=timezone.utc)
        return self


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    quantity: Count = Field(1, ge=1, le=1000)


class OrderIn(BaseModel):
    """An order: recorded as one purchase per item. With `order_id`, posting it again stores nothing new."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"user_id": "u42", "order_id": "o-1001", "items": [{"product_id": "tt0133093", "quantity": 2}]}]})

    user_id: UserId
    items: list[OrderItem] = Field(min_length=1, max_length=1000)
    order_id: ProductId | None = None
    occurred_at: DateTime | None = None


def embedding_text(title: str, description: str) -> str:
    """The text whose embedding represents a product."""
    return f"{title}. {description}"


def content_hash(title: str, description: str) -> str:
    """Hash of exactly what is embedded: equal hashes mean the stored vector is still right."""
    return hashlib.sha256(embedding_text(title, description).encode()).hexdigest()


def new_product_id() -> str:
    return uuid.uuid4().hex


class VersionClock:
    """Versions for writes: nanoseconds since the epoch, strictly increasing within a process.

    A later accepted write gets a higher version, so "later writes win" holds across any number
    of workers processing the queue in any order.
    """

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = max(self._last + 1, time.time_ns())
        return self._last


def error_details(exc: ValidationError, prefix: str = "") -> list[dict]:
    """pydantic errors as `[{"field", "problem"}]`, fields as dotted paths (`[3].title`)."""
    details = []
    for err in exc.errors():
        path = prefix
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        details.append({"field": path or "body", "problem": err["msg"]})
    return details
