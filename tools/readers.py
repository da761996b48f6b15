"""Reading catalogue files for the importer: JSON lines, a JSON array or CSV, mapped onto products.

A mapping `target=source` says which column (or JSON key) feeds which product field; a field
whose name is also a column maps to itself. Columns that feed no field go into `metadata` (or
are dropped). CSV cells are text: `year` becomes a number, `genres` a list split on `list_sep`,
and empty cells count as absent. The ingest service validates the result.
"""
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

FIELDS = ("id", "title", "description", "genres", "year", "metadata")
FORMATS = ("jsonl", "json", "csv")


class ReadError(ValueError):
    """A row that cannot become a product before it reaches ingest (bad JSON, a bad year)."""


@dataclass(frozen=True)
class Mapping:
    fields: dict[str, str] = field(default_factory=dict)  # product field -> source column
    list_sep: str = "|"
    keep_unmapped: bool = True

    @classmethod
    def parse(cls, text: str | None, list_sep: str = "|", keep_unmapped: bool = True) -> "Mapping":
        """`title=name,description=overview` -> Mapping; unknown targets are an error."""
        fields = {}
        for pair in filter(None, (part.strip() for part in (text or "").split(","))):
            target, sep, source = pair.partition("=")
            if not sep or target.strip() not in FIELDS or not source.strip():
                raise ValueError(f"bad mapping {pair!r}: write FIELD=COLUMN with FIELD one of {', '.join(FIELDS)}")
            fields[target.strip()] = source.strip()
        return cls(fields, list_sep, keep_unmapped)

    def product(self, row: dict, from_text: bool) -> dict:
        sources = {target: self.fields.get(target, target) for target in FIELDS}
        used = set(sources.values())
        product = {}
        for target, source in sources.items():
            value = row.get(source)
            if value is None or (from_text and value == ""):
                continue
            product[target] = _convert(target, value, self.list_sep, from_text)
        extra = {key: value for key, value in row.items() if key not in used and value not in (None, "")}
        if self.keep_unmapped and extra:
            product["metadata"] = {**extra, **product.get("metadata", {})}
        return product


def _convert(target: str, value, list_sep: str, from_text: bool):
    if target == "genres" and isinstance(value, str):
        return [part.strip() for part in value.split(list_sep) if part.strip()]
    if target == "year" and isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ReadError(f"year: {value!r} is not a whole number")
    if target == "id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if target == "metadata" and from_text:
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ReadError(f"metadata: not JSON: {exc}")
    return value


def detect_format(path: Path, given: str | None) -> str:
    if given:
        return given
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    with path.open(encoding="utf-8") as handle:
        head = handle.read(4096).lstrip()
    return "json" if head.startswith("[") else "jsonl"


def read_rows(path: Path, fmt: str, mapping: Mapping) -> Iterator[tuple[int, dict | ReadError]]:
    """(row number, product or the reason it could not be read), in file order; rows count from 1."""
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=1):
                yield number, _mapped(mapping, row, from_text=True)
    elif fmt == "json":
        with path.open(encoding="utf-8") as handle:
            items = json.load(handle)
        if not isinstance(items, list):
            raise ReadError("a .json file must hold an array of objects; use JSON lines for one object per line")
        for number, item in enumerate(items, start=1):
            yield number, _object(mapping, item)
    else:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, ReadError(f"not JSON: {exc}")
                    continue
                yield number, _object(mapping, item)


def _object(mapping: Mapping, item) -> dict | ReadError:
    if not isinstance(item, dict):
        return ReadError(f"expected an object, got {type(item).__name__}")
    return _mapped(mapping, item, from_text=False)


def _mapped(mapping: Mapping, row: dict, from_text: bool) -> dict | ReadError:
    try:
        return mapping.product(row, from_text)
    except ReadError as exc:
        return exc
