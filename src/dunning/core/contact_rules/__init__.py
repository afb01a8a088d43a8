"""Contact rule packs: when the law and the policy let a customer be contacted.

`pack_for(debtor, overrides=...)` picks a `RulePack` by country and kind of
customer; `RulePackContactRules` implements `dunning.core.contacts.ContactRules`.
Pure code: no Django, no clock, no I/O.
"""

from dunning.core.contact_rules.judge import (
    MAX_SEARCH_DAYS,
    RulePackContactRules,
    earliest_contact,
    local_instant,
    window_on,
)
from dunning.core.contact_rules.packs import (
    BUILT_IN_PACKS,
    BUSINESS,
    DEFAULT_INDIVIDUAL,
    TH_INDIVIDUAL,
    US_INDIVIDUAL,
    CapAction,
    RulePack,
    Window,
    pack_for,
    pack_key,
)
from dunning.core.contact_rules.public_holidays import holiday_name, holidays_in

__all__ = [
    "BUILT_IN_PACKS",
    "BUSINESS",
    "DEFAULT_INDIVIDUAL",
    "MAX_SEARCH_DAYS",
    "TH_INDIVIDUAL",
    "US_INDIVIDUAL",
    "CapAction",
    "RulePack",
    "RulePackContactRules",
    "Window",
    "earliest_contact",
    "holiday_name",
    "holidays_in",
    "local_instant",
    "pack_for",
    "pack_key",
    "window_on",
]
