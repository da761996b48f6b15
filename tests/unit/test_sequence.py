from services.trainer.sequence import SequenceConfig, build_next_neighbours


def test_what_follows_an_item_for_many_people_comes_first():
    sequences = [["a", "b", "c"], ["a", "b", "d"], ["x", "a", "c"], ["d", "a"]]
    table = build_next_neighbours(sequences, SequenceConfig(window=2, popularity_damping=0.0))
    assert [n for n, _ in table["a"]][:2] == ["b", "c"]
    assert "x" not in dict(table["a"])  # only what came after
    assert "d" not in table or all(n != "d" for n, _ in table["d"])  # never itself


def test_closer_followers_weigh_more_and_rows_are_pruned():
    table = build_next_neighbours([["a", "b", "c", "d"]], SequenceConfig(window=3, popularity_damping=0.0,
                                                                         neighbours_per_item=2))
    assert table["a"] == [("b", 1.0), ("c", 0.5)]


def test_no_sequences_no_table():
    assert build_next_neighbours([]) == {}
    assert build_next_neighbours([["only"]]) == {}
