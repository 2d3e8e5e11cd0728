"""Money: `Decimal` amounts checked against their ISO 4217 currency.

Babel carries the ISO 4217 list and each currency's minor units, so an amount of
`10.001 CNY` or `5.5 JPY` is rejected instead of silently rounded.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from babel.numbers import get_currency_precision, list_currencies
from pydantic import AfterValidator, Field

MAX_AMOUNT = Decimal("1000000000000")  # 10^12 in any currency is not a consumer loan

# Read once at import: Babel loads its data files lazily, and file access is not
# allowed (nor deterministic) inside a workflow, where inputs are validated again.
MINOR_UNITS: dict[str, int] = {
    code: int(get_currency_precision(code)) for code in list_currencies()
}


def _check_currency(code: str) -> str:
    code = code.strip().upper()
    if len(code) != 3 or not code.isalpha() or code not in MINOR_UNITS:
        raise ValueError("must be an ISO 4217 currency code such as CNY or USD")
    return code


CurrencyCode = Annotated[str, AfterValidator(_check_currency)]

Amount = Annotated[
    Decimal,
    Field(ge=Decimal(0), le=MAX_AMOUNT, max_digits=18, decimal_places=4, allow_inf_nan=False),
]
PositiveAmount = Annotated[
    Decimal,
    Field(gt=Decimal(0), le=MAX_AMOUNT, max_digits=18, decimal_places=4, allow_inf_nan=False),
]


def minor_units(currency: str) -> int:
    """Digits after the decimal point that the currency allows (2 for CNY, 0 for JPY)."""
    return MINOR_UNITS[currency]


def check_minor_units(amount: Decimal, currency: str) -> None:
    """Raise if `amount` has more decimals than `currency` allows."""
    exponent = amount.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places > minor_units(currency):
        raise ValueError(f"has {places} decimals but {currency} allows {minor_units(currency)}")
