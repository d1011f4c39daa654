"""permute: a bijection of [0, n) chosen by a key, computed element by element."""

import numpy as np
import pytest

from mia.data.permutation import permute


@pytest.mark.parametrize("n", [1, 2, 3, 5, 64, 100, 1000, 4097])
def test_it_is_a_bijection_of_the_range(n):
    for key in (0, 1, 2**62 + 12345):
        image = permute(np.arange(n), n, key)
        assert sorted(image.tolist()) == list(range(n))


def test_element_by_element_equals_all_at_once():
    n, key = 777, 99
    whole = permute(np.arange(n), n, key)
    pieces = np.concatenate(
        [permute(np.arange(i, min(i + 10, n)), n, key) for i in range(0, n, 10)]
    )
    assert np.array_equal(whole, pieces)
    assert permute(np.array([5, 5]), n, key).tolist() == [whole[5]] * 2


def test_keys_choose_different_orders_that_look_shuffled():
    n = 1000
    a, b = permute(np.arange(n), n, 1), permute(np.arange(n), n, 2)
    assert not np.array_equal(a, b)
    assert abs(np.corrcoef(np.arange(n), a)[0, 1]) < 0.1  # not near the identity
    assert np.mean(a == np.arange(n)) < 0.02  # few fixed points (1/n expected)


def test_positions_outside_the_range_are_refused():
    with pytest.raises(ValueError):
        permute(np.array([10]), 10, 0)
    with pytest.raises(ValueError):
        permute(np.array([0]), 0, 0)
