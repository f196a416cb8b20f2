"""The structure of a call's arguments, taken apart into leaves and put back
(:mod:`vaeloss.check.probe.compiled`); the compiled calls themselves are tested per framework
(``test_backend_jax.py``, ``test_backend_tensorflow.py``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vaeloss.check.probe.compiled import _flatten, _unflatten

_leaves = st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=3), st.none())
_nested = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=2), inner, max_size=3),
    ),
    max_leaves=12,
)


@given(_nested)
def test_flatten_then_unflatten_gives_the_value_back(value):
    leaves: list = []
    structure = _flatten(value, leaves)
    actual = _unflatten(structure, iter(leaves))
    assert actual == value
    assert type(actual) is type(value)
    hash(structure)  # a compilation's key


def test_the_same_structure_for_other_leaves():
    a: list = []
    b: list = []
    assert _flatten(([1, 2], {"beta": 0.5}, [3]), a) == _flatten((["x", "y"], {"beta": 2.0}, [None]), b)
    assert a == [1, 2, 0.5, 3]
    assert _flatten(([1, 2],), []) != _flatten(((1, 2),), [])  # a tuple is not a list
