"""Request bodies that hold one item or an array of them: validated all-or-nothing."""
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from shared.errors import InvalidInput
from shared.schemas import error_details


def batch_items(body: object, max_batch: int, noun: str) -> tuple[list, bool]:
    """(the items, whether the body was an array): one object, or an array of 1 to `max_batch`."""
    is_list = isinstance(body, list)
    items = body if is_list else [body]
    if not 1 <= len(items) <= max_batch:
        raise InvalidInput(
            f"send between 1 and {max_batch} {noun} per request",
            [{"field": "body", "problem": f"array of {len(items)} items; allowed 1 to {max_batch}"}],
        )
    return items, is_list


M = TypeVar("M", bound=BaseModel)


def validate_all(model: type[M], items: list, is_list: bool) -> list[M]:
    """Every item valid, or InvalidInput naming every bad field (`[3].title` in an array)."""
    valid, details = [], []
    for index, item in enumerate(items):
        try:
            valid.append(model.model_validate(item))
        except ValidationError as exc:
            details += error_details(exc, f"[{index}]" if is_list else "")
    if details:
        raise InvalidInput(f"{len(details)} invalid field(s); nothing of this request was accepted", details)
    return valid


def no_duplicates(keys: list[str | None], field: str, noun: str) -> None:
    """InvalidInput naming every repeat of a key in one request (`[3].id`); None keys are not compared."""
    first: dict[str, int] = {}
    details = []
    for index, key in enumerate(keys):
        if key is None:
            continue
        if key in first:
            details.append({"field": field.format(index), "problem": f"{noun} {key!r} also at {field.format(first[key])};"
                                                                       f" send each once per request"})
        first.setdefault(key, index)
    if details:
        raise InvalidInput(f"{len(details)} repeated {noun}(s); nothing of this request was accepted", details)
