"""The recommendation query: one pydantic model per request shape, parsed once in the view.

`RecommendationQuery` is the query string of `GET /v1/users/{id}/recommendations` (and, in part,
of `.../similar`); `SessionBody` the body of `POST /v1/recommendations`. The published OpenAPI
document is generated from these models, so their descriptions and constraints are the contract.
A value that does not parse is a 400 naming the parameter (`params.bad`).
"""
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, WithJsonSchema,
                      field_validator, model_validator)

from services.api.hybrid import Tuning
from services.api.params import GENRE_PATTERN, MAX_EXCLUDE, MAX_LIMIT, bad
from services.api.store import Filters
from shared.schemas import ProductId

MAX_ID_TEXT = 8000  # comma-separated ids in a query string
Strategy = Literal["hybrid", "collaborative", "content", "spike", "popular"]


def _id_list(value: object) -> object:
    """Ids as a comma-separated string or a list (numbers allowed, as the spike's clients send)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        if len(value) > MAX_ID_TEXT:
            raise ValueError(f"at most {MAX_ID_TEXT} characters of comma-separated ids")
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list):
        return [str(item) if isinstance(item, int) and not isinstance(item, bool) else item for item in value]
    return value


def _no_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("a number, not true/false")
    return value


# Documented as all it takes: an array (of ids, or whole numbers), comma-separated text, or null.
_IDS_SCHEMA = {"anyOf": [
    {"type": "array", "maxItems": MAX_EXCLUDE,
     "items": {"anyOf": [TypeAdapter(ProductId).json_schema(), {"type": "integer", "minimum": 0}]}},
    {"type": "string", "maxLength": MAX_ID_TEXT, "description": "Comma-separated ids",
     "examples": ["tt0133093,tt0062622"]},
    {"type": "null"}]}
ProductIds = Annotated[list[ProductId], BeforeValidator(_id_list), Field(max_length=MAX_EXCLUDE),
                       WithJsonSchema(_IDS_SCHEMA)]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description="How many items (1-100)."), BeforeValidator(_no_bool)]
Cursor = Annotated[str | None, Field(max_length=4096, description="`next_cursor` of the previous page, unchanged.")]
StrategyField = Annotated[Strategy, Field(description=(
    "hybrid (default): collaborative, content and popularity blended; collaborative: the model alone; "
    "content: multi-interest description similarity; spike: the mean of liked vectors; popular."))]


class FilterFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    genre: str | None = Field(None, pattern=GENRE_PATTERN, description="Only products of this genre.")
    year_from: Annotated[int | None, BeforeValidator(_no_bool)] = Field(
        None, ge=1800, le=2200, description="Only products from this year on.")
    year_to: Annotated[int | None, BeforeValidator(_no_bool)] = Field(
        None, ge=1800, le=2200, description="Only products up to this year.")
    exclude: ProductIds = Field(default_factory=list, description=(
        f"Product ids to leave out (comma-separated, at most {MAX_EXCLUDE}), besides the user's history."))

    @model_validator(mode="after")
    def _years_in_order(self) -> "FilterFields":
        if self.year_from is not None and self.year_to is not None and self.year_from > self.year_to:
            raise ValueError("year_to must not be before year_from")
        return self

    def filters(self) -> Filters:
        return Filters(self.genre, self.year_from, self.year_to, tuple(self.exclude))


class RankingFields(BaseModel):
    """What every recommendation request may say about the list."""

    limit: Limit = 10
    cursor: Cursor = None
    strategy: StrategyField = "hybrid"
    weights: str | None = Field(None, max_length=200, description=(
        "Overrides of the hybrid's blend for tuning, as collaborative:1,content:0.3,popularity:0.05,next:0.6 "
        "(each 0-10)."))
    diversity: Annotated[float, BeforeValidator(_no_bool)] = Field(0.0, ge=0, le=1, allow_inf_nan=False, description=(
        "0 ranks by relevance alone; higher trades relevance for variety (maximal marginal relevance)."))

    @field_validator("weights")
    @classmethod
    def _weights_parse(cls, value: str | None) -> str | None:
        Tuning.parse(value)
        return value

    @property
    def tuning(self) -> Tuning:
        return Tuning.parse(self.weights)


class RecommendationQuery(RankingFields, FilterFields):
    """The query string of a recommendation request."""

    model_config = ConfigDict(extra="ignore")

    def filters(self) -> Filters:
        return FilterFields.filters(self)


class SessionBody(RankingFields):
    """The body of `POST /v1/recommendations`: an anonymous session's likes and dislikes."""

    model_config = ConfigDict(extra="forbid")

    liked: ProductIds = Field(default_factory=list, description="Product ids the session liked.")
    disliked: ProductIds = Field(default_factory=list, description="Product ids the session disliked.")
    filters_: FilterFields = Field(default_factory=FilterFields, alias="filters",
                                   description="genre, year_from, year_to, exclude: as in the query string.")

    def filters(self) -> Filters:
        return self.filters_.filters()


def _stripped(value: object) -> object:
    return (value.strip() or None) if isinstance(value, str) else value


class BrowseQuery(BaseModel):
    """The query string of `GET /v1/products`."""

    query: Annotated[Annotated[str, Field(max_length=200)] | None, BeforeValidator(_stripped)] = Field(
        None, description="Part of the title, any case (at most 200 characters).")
    genre: str | None = Field(None, pattern=GENRE_PATTERN, description="Only products of this genre.")
    limit: Limit = 20
    cursor: Cursor = None


class ListQuery(BaseModel):
    """The query string of the user listings."""

    limit: Annotated[int, BeforeValidator(_no_bool)] = Field(100, ge=1, le=1000, description="How many (1-1000).")


def _field(error: dict) -> str:
    names = [str(part) for part in error["loc"] if isinstance(part, str)]
    if error["type"] == "value_error" and "year_to" in error["msg"]:
        names.append("year_to")
    return ".".join(names) or "body"


def parse(model: type[BaseModel], data: object) -> BaseModel:
    """The model from a query string (empty values count as absent) or a JSON body; else a 400."""
    if isinstance(data, Mapping) and not isinstance(data, dict):
        data = {key: value for key, value in data.items() if value != ""}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise bad(_field(error), error["msg"].removeprefix("Value error, ")) from None
