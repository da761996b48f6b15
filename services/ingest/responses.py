"""What ingest answers on success, as documented in its /openapi.json (schemathesis checks the
answers against these in `make test`)."""
from pydantic import BaseModel, ConfigDict, Field


class Accepted(BaseModel):
    """Products accepted: queued durably, visible once embedded."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"accepted": 2, "ids": ["tt0133093", "9f3c1e"]}]})

    accepted: int = Field(ge=0)
    ids: list[str] = Field(description="The products' ids, in the order sent (generated where none was given)")


class InteractionsStored(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"user_id": "u42", "received": 2, "stored": 1}]})

    user_id: str
    received: int = Field(ge=0)
    stored: int = Field(ge=0, description="How many were new (an event_id seen before is not stored again)")


class OrderStored(InteractionsStored):
    order_id: str | None
