"""The recommendation query objects: parsed from the query string or body, 400s name the field."""
import pytest
from multidict import MultiDict, MultiDictProxy

from services.api.query import RecommendationQuery, SessionBody, parse
from services.api.store import Filters
from shared.errors import BadParameter


def query(**values) -> RecommendationQuery:
    return parse(RecommendationQuery, MultiDictProxy(MultiDict({k: str(v) for k, v in values.items()})))


def test_defaults_and_empty_values_count_as_absent():
    parsed = query(genre="", limit="", cursor="")
    assert (parsed.limit, parsed.cursor, parsed.strategy, parsed.diversity) == (10, None, "hybrid", 0.0)
    assert parsed.filters() == Filters()


def test_values_parse_into_filters_and_tuning():
    parsed = query(limit=25, genre="Science Fiction", year_from=1990, year_to=2000, exclude="a1, b2,", strategy="content",
                   weights="content:0.6", diversity=0.3, unknown="ignored")
    assert parsed.filters() == Filters("Science Fiction", 1990, 2000, ("a1", "b2"))
    assert parsed.tuning.blend.content == 0.6 and parsed.strategy == "content" and parsed.limit == 25


@pytest.mark.parametrize("values, field", [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "ten"}, "limit"),
    ({"genre": "<script>"}, "genre"), ({"year_from": "1990x"}, "year_from"), ({"year_to": 1700}, "year_to"),
    ({"year_from": 2001, "year_to": 2000}, "year_to"), ({"strategy": "magic"}, "strategy"),
    ({"exclude": "ok,bad id"}, "exclude"), ({"exclude": ",".join(f"p{i}" for i in range(501))}, "exclude"),
    ({"weights": "magic:1"}, "weights"), ({"diversity": 2}, "diversity"), ({"diversity": "nan"}, "diversity"),
])
def test_bad_values_are_400s_naming_the_parameter(values, field):
    with pytest.raises(BadParameter) as raised:
        query(**values)
    assert raised.value.details[0]["field"] == field


def test_a_session_body_takes_ids_as_strings_or_numbers_and_refuses_unknown_fields():
    body = parse(SessionBody, {"liked": ["a", 7], "disliked": "b,c", "filters": {"genre": "Western", "exclude": ["d"]}})
    assert body.liked == ["a", "7"] and body.disliked == ["b", "c"]
    assert body.filters() == Filters("Western", None, None, ("d",))
    for bad_body, field in (({"likes": []}, "likes"), ({"liked": [True]}, "liked"),
                            ({"filters": {"genre": "<x>"}}, "filters.genre"), ({"limit": True}, "limit"),
                            ({"filters": "x"}, "filters")):
        with pytest.raises(BadParameter) as raised:
            parse(SessionBody, bad_body)
        assert raised.value.details[0]["field"] == field
