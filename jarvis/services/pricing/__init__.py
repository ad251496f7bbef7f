"""Model prices and run costs: pure rules (``rules``), views, and the service.

See :mod:`jarvis.services.pricing.rules` for how a price version is chosen and a cost computed.
"""

from jarvis.services.pricing.rules import (
    COST_QUANTUM,
    MTOK,
    PriceLike,
    compute_cost,
    pattern_matches,
    price_day,
    run_cost,
    select_price,
)
from jarvis.services.pricing.service import (
    PRICE_FILE,
    PROVIDERS,
    PricingService,
    load_price_file,
)
from jarvis.services.pricing.views import PriceInput, PriceView, RunCost

__all__ = [
    "COST_QUANTUM",
    "MTOK",
    "PRICE_FILE",
    "PROVIDERS",
    "PriceInput",
    "PriceLike",
    "PriceView",
    "PricingService",
    "RunCost",
    "compute_cost",
    "load_price_file",
    "pattern_matches",
    "price_day",
    "run_cost",
    "select_price",
]
