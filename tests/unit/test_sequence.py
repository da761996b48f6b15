import numpy as np

from services.trainer.sequence import SequenceConfig, build_next_neighbours


def table_of(sequences: list[list[str]], config: SequenceConfig = SequenceConfig()) -> dict[str, list]:
    """The table as {product: [(next product, weight), ...]} from per-user product sequences."""
    names = sorted({p for sequence in sequences for p in sequence})
    user = np.array([u for u, sequence in enumerate(sequences) for _ in sequence], dtype=np.int32)
    product = np.array([names.index(p) for sequence in sequences for p in sequence], dtype=np.int32)
    table = build_next_neighbours(user, product, len(names), config)
    result = {}
    for item in table.filled_rows():
        index, weight = table.row(item)
        result[names[item]] = [(names[j], float(w)) for j, w in zip(index, weight)]
    return result


def test_what_follows_an_item_for_many_people_comes_first():
    table = table_of([["a", "b", "c"], ["a", "b", "d"], ["x", "a", "c"], ["d", "a"]],
                     SequenceConfig(window=2, popularity_damping=0.0))
    assert [n for n, _ in table["a"]][:2] == ["b", "c"]
    assert "x" not in dict(table["a"])  # only what came after
    assert all(n != "d" for n, _ in table.get("d", []))  # never itself


def test_closer_followers_weigh_more_and_rows_are_pruned():
    table = table_of([["a", "b", "c", "d"]], SequenceConfig(window=3, popularity_damping=0.0, neighbours_per_item=2))
    assert table["a"] == [("b", 1.0), ("c", 0.5)]


def test_sequences_of_different_users_never_join():
    table = table_of([["a", "b"], ["c", "d"]], SequenceConfig(window=5, popularity_damping=0.0))
    assert table == {"a": [("b", 1.0)], "c": [("d", 1.0)]}


def test_a_repeat_is_not_its_own_follower_and_damping_demotes_what_follows_everything():
    sequences = [["a", "a", "hit"], ["b", "hit"], ["c", "hit"], ["a", "niche"]]
    damped = table_of(sequences, SequenceConfig(window=1, popularity_damping=1.0))
    assert [n for n, _ in damped["a"]] == ["niche", "hit"]
    assert dict(table_of(sequences, SequenceConfig(window=1, popularity_damping=0.0))["a"]) == {"hit": 1.0, "niche": 1.0}


def test_no_sequences_no_table():
    assert table_of([]) == {}
    assert table_of([["only"]]) == {}
