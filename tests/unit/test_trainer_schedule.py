import pytest

from services.trainer.__main__ import due
from shared.settings import TrainerSettings

SETTINGS = TrainerSettings(train_after_interactions=100, train_every_s=3600)


@pytest.mark.parametrize(
    "new, age_s, expected",
    [
        (0, None, False),  # nothing to learn from
        (1, None, True),  # never trained: train as soon as there is anything
        (99, 60, False),  # few new and a fresh model
        (100, 60, True),  # enough new interactions
        (1, 3600, True),  # the model is old and something arrived
        (0, 10**6, False),  # old, but nothing new
    ],
)
def test_training_is_due_after_enough_interactions_or_time(new, age_s, expected):
    assert due(new, age_s, SETTINGS) is expected
