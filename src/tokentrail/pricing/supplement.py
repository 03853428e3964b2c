"""tokentrail's supplementary price file (`supplement.toml`, shipped inside the package).

It fills known gaps of the bundled catalog and sits between the user's overrides and the
catalog. Every entry names its `source` and carries a `note`; the loader refuses any that
does not.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from genai_prices.units import UnitRegistry

from tokentrail.pricing.overrides import PriceFile, parse_price_file

SUPPLEMENT_RESOURCE = "supplement.toml"


def supplement_bytes() -> bytes:
    return files("tokentrail.pricing").joinpath(SUPPLEMENT_RESOURCE).read_bytes()


@cache
def load_supplement(registry: UnitRegistry) -> PriceFile:
    """The parsed supplement (parsed once per unit registry)."""
    return parse_price_file(
        supplement_bytes(), origin=f"tokentrail/pricing/{SUPPLEMENT_RESOURCE}", layer="supplement", registry=registry
    )


__all__ = ["SUPPLEMENT_RESOURCE", "load_supplement", "supplement_bytes"]
