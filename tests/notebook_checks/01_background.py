"""01_background: the three "your turn" exercises (word pieces, cosine by hand, mean pooling) pass with their solutions."""
from notebook_checks import assert_exercises_correct


def check(nb, workdir, values):
    assert_exercises_correct(nb, "01.e1", "01.e2", "01.e3")
