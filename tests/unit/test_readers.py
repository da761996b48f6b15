"""Reading import files: formats, the column mapping, conversions and per-row errors."""
import json

import pytest

from tools.readers import Mapping, ReadError, detect_format, read_rows


def test_csv_columns_map_onto_products_and_text_becomes_numbers_and_lists(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_text("movieId,title,year,genres,overview,studio\n"
                    "7,Heat,1995,Crime|Thriller,A detective hunts a thief.,WB\n"
                    "8,Odd,,Drama,,\n")
    rows = list(read_rows(path, detect_format(path, None), Mapping.parse("id=movieId,description=overview")))
    assert rows[0] == (1, {"id": "7", "title": "Heat", "year": 1995, "genres": ["Crime", "Thriller"],
                           "description": "A detective hunts a thief.", "metadata": {"studio": "WB"}})
    assert rows[1] == (2, {"id": "8", "title": "Odd", "genres": ["Drama"]})  # empty cells are absent


def test_a_bad_cell_or_line_is_reported_for_its_row_and_reading_goes_on(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text('{"title": "A", "description": "a"}\n\nnot json\n{"title": "B", "year": "19x5"}\n[1]\n')
    rows = list(read_rows(path, detect_format(path, None), Mapping.parse(None, keep_unmapped=False)))
    assert [number for number, _ in rows] == [1, 3, 4, 5]
    assert rows[0][1] == {"title": "A", "description": "a"}
    assert all(isinstance(item, ReadError) for _, item in rows[1:])


def test_a_json_array_is_detected_and_ids_become_strings(tmp_path):
    path = tmp_path / "items.json"
    path.write_text(json.dumps([{"sku": 12, "name": "Lamp", "text": "A lamp.", "genres": "home|light"}]))
    mapping = Mapping.parse("id=sku,title=name,description=text", keep_unmapped=False)
    assert detect_format(path, None) == "json"
    assert list(read_rows(path, "json", mapping)) == [
        (1, {"id": "12", "title": "Lamp", "description": "A lamp.", "genres": ["home", "light"]})]


@pytest.mark.parametrize("text", ["title", "colour=c", "title="])
def test_a_bad_mapping_says_how_to_write_one(text):
    with pytest.raises(ValueError, match="FIELD=COLUMN"):
        Mapping.parse(text)
