from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaeloss.objective.algebra import Monomial, as_fraction

monomials = st.builds(
    Monomial,
    st.fractions(min_value=Fraction(1, 50), max_value=100, max_denominator=50),
    st.integers(-2, 2),
    st.integers(-2, 2),
    st.integers(-2, 2),
)
sizes = st.tuples(st.integers(1, 512), st.integers(1, 4096), st.integers(1, 64))


@given(monomials, monomials, sizes)
def test_product_and_quotient_evaluate_like_numbers(a, b, s):
    B, D, k = s
    assert (a * b).evaluate(B=B, D=D, k=k) == pytest.approx(
        a.evaluate(B=B, D=D, k=k) * b.evaluate(B=B, D=D, k=k)
    )
    assert (a / b).evaluate(B=B, D=D, k=k) == pytest.approx(
        a.evaluate(B=B, D=D, k=k) / b.evaluate(B=B, D=D, k=k)
    )


@given(monomials, sizes)
def test_formula_evaluates_to_the_value(m, s):
    B, D, k = s
    expr = m.formula().replace("^", "**")
    assert eval(expr, {"B": B, "D": D, "k": k}) == pytest.approx(m.evaluate(B=B, D=D, k=k))


@pytest.mark.parametrize(
    ("monomial", "expected"),
    [
        pytest.param(Monomial(Fraction(1), B=1, D=1), "B*D", id="B*D"),
        pytest.param(Monomial(Fraction(1), D=1, k=-1), "D/k", id="D/k"),
        pytest.param(Monomial(Fraction(1, 2), B=-1), "1/(2*B)", id="1/(2B)"),
        pytest.param(Monomial(Fraction(1, 8000), D=1), "D/8000", id="D/8000"),
        pytest.param(Monomial(Fraction(1)), "1", id="one"),
        pytest.param(Monomial(Fraction(-1)), "-1", id="minus-one"),
    ],
)
def test_formula_text(monomial, expected):
    assert monomial.formula() == expected


def test_as_fraction_reads_decimals_exactly():
    assert as_fraction(0.00025) == Fraction(1, 4000)
    assert as_fraction(1e-4) == Fraction(1, 10000)
