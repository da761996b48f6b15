import pytest
from pydantic import ValidationError

from shared.schemas import ProductIn, ProductMessage, VersionClock, content_hash, error_details


def fields(exc: ValidationError) -> list[str]:
    return [detail["field"] for detail in error_details(exc)]


def test_a_valid_product_is_trimmed_and_keeps_its_metadata():
    product = ProductIn.model_validate(
        {"id": "tt-0042", "title": " Alien ", "description": "In space.", "genres": ["Horror"], "year": 1979,
         "metadata": {"rating": 4.5, "tags": ["space", 3], "director": None}}
    )
    assert product.title == "Alien"
    assert product.metadata["tags"] == ["space", 3]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"description": ""}, "description"),
        ({"description": "x" * 10_001}, "description"),
        ({"id": "has space"}, "id"),
        ({"id": "x" * 129}, "id"),
        ({"id": "-leading-dash"}, "id"),
        ({"year": "1999"}, "year"),
        ({"year": 1200}, "year"),
        ({"genres": "Drama"}, "genres"),
        ({"metadata": {"nested": {"a": 1}}}, "metadata"),
        ({"metadata": [1, 2]}, "metadata"),
        ({"colour": "red"}, "colour"),
        ({"description": "nul\x00byte"}, "description"),
        ({"metadata": {"k": "nul\x00"}}, "metadata"),
    ],
)
def test_each_bad_field_is_named(change, field):
    with pytest.raises(ValidationError) as caught:
        ProductIn.model_validate({"title": "T", "description": "D", **change})
    assert fields(caught.value) == [field]


def test_error_paths_name_the_item_in_a_batch():
    with pytest.raises(ValidationError) as caught:
        ProductIn.model_validate({"title": "T"})
    assert error_details(caught.value, "[7]") == [{"field": "[7].description", "problem": "Field required"}]


def test_content_hash_changes_only_with_what_is_embedded():
    assert content_hash("A", "b") == content_hash("A", "b")
    assert content_hash("A", "b") != content_hash("A", "c")
    assert content_hash("A", "b") != content_hash("B", "b")


def test_version_clock_is_strictly_increasing():
    clock = VersionClock()
    versions = [clock.next() for _ in range(10_000)]
    assert versions == sorted(set(versions))


def test_an_upsert_message_needs_a_product():
    with pytest.raises(ValidationError):
        ProductMessage(type="product.upsert", tenant_id="default", product_id="p1", version=1)
    delete = ProductMessage(type="product.delete", tenant_id="default", product_id="p1", version=1)
    assert ProductMessage.model_validate_json(delete.model_dump_json()) == delete
