"""Exact monomials in batch size B, data dim D and latent dim k.

Every factor a loss convention puts on its reconstruction or KL sum is such a monomial,
``coef * B**b * D**d * k**e``, with an exact rational coefficient.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Monomial", "as_fraction"]


def as_fraction(value: float | int | Fraction | str) -> Fraction:
    """Exact fraction of a number, reading floats by their shortest decimal repr.

    >>> as_fraction(0.00025)
    Fraction(1, 4000)
    """
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        return Fraction(repr(value))
    return Fraction(value)


def _fmt_coef(coef: Fraction) -> str:
    if coef.denominator == 1:
        return str(coef.numerator)
    if abs(coef.numerator) <= 10**6 and coef.denominator <= 10**6:
        return f"{coef.numerator}/{coef.denominator}"
    return f"{float(coef):.12g}"


@dataclass(frozen=True)
class Monomial:
    """``coef * B**B_exp * D**D_exp * k**k_exp`` with an exact coefficient.

    >>> m = Monomial(Fraction(1), B=1, D=1)
    >>> m.formula(), m.evaluate(B=128, D=784, k=20)
    ('B*D', 100352.0)
    >>> (Monomial(Fraction(1), D=1) / Monomial(Fraction(1), k=1)).formula()
    'D/k'
    """

    coef: Fraction
    B: int = 0
    D: int = 0
    k: int = 0

    @classmethod
    def const(cls, value: float | int | Fraction | str) -> Monomial:
        """A constant monomial."""
        return cls(as_fraction(value))

    def __mul__(self, other: Monomial) -> Monomial:
        return Monomial(self.coef * other.coef, self.B + other.B, self.D + other.D, self.k + other.k)

    def __truediv__(self, other: Monomial) -> Monomial:
        return Monomial(self.coef / other.coef, self.B - other.B, self.D - other.D, self.k - other.k)

    def scale(self, factor: float | int | Fraction | str) -> Monomial:
        """This monomial times a constant."""
        return Monomial(self.coef * as_fraction(factor), self.B, self.D, self.k)

    def evaluate(self, *, B: float, D: float, k: float) -> float:
        """Its value at the given sizes."""
        return float(self.coef) * float(B) ** self.B * float(D) ** self.D * float(k) ** self.k

    def depends_on(self) -> tuple[str, ...]:
        """The names of the sizes it varies with."""
        return tuple(n for n in ("B", "D", "k") if getattr(self, n) != 0)

    def formula(self) -> str:
        """A readable formula such as ``B*D``, ``D/k`` or ``1/(2*B)``."""
        num: list[str] = []
        den: list[str] = []
        for name in ("B", "D", "k"):
            e = getattr(self, name)
            part = name if abs(e) == 1 else f"{name}^{abs(e)}"
            if e > 0:
                num.append(part)
            elif e < 0:
                den.append(part)
        coef = self.coef
        if coef == 0:
            return "0"
        sign = "-" if coef < 0 else ""
        coef = abs(coef)
        if coef.denominator != 1 and coef.denominator <= 10**6 and coef.numerator <= 10**6:
            if coef.numerator != 1:
                num.insert(0, str(coef.numerator))
            den.insert(0, str(coef.denominator))
        elif coef != 1:
            num.insert(0, _fmt_coef(coef))
        top = "*".join(num) if num else "1"
        if not den:
            return sign + top
        bottom = den[0] if len(den) == 1 else "(" + "*".join(den) + ")"
        return f"{sign}{top}/{bottom}"
