"""The simulator's engine-independent parts: scenarios, their truth, and the referees.

- `scenario`: the scenario file format (JSON Schema + semantic checks) and its dataclasses.
- `world`: what a charge does at a moment, and when the replacement card takes over.
- `checkers`: network-rule and contact-rule violation counters, written from
  reference/rules.md without sharing code with the planner.
- `generate`: synthetic scenarios with realistic payment habits.

The runner that replays a scenario through the engine lives elsewhere; these
modules are pure Python (no Django) so the runner and the tests can share them.
"""

from dunning.simulator.scenario import (
    CardRole,
    ChargeOutcome,
    DeclineWindow,
    HistoryCharge,
    ReplacementCard,
    Scenario,
    ScenarioError,
    SimCard,
    SimCustomer,
    SimInvoice,
    dump_scenario,
    load_scenario,
    scenario_from_dict,
    scenario_schema,
)
from dunning.simulator.world import (
    Outcome,
    card_expires_at,
    card_in_use,
    charge_outcome,
    replacement_takes_over,
)

__all__ = [
    "CardRole",
    "ChargeOutcome",
    "DeclineWindow",
    "HistoryCharge",
    "Outcome",
    "ReplacementCard",
    "Scenario",
    "ScenarioError",
    "SimCard",
    "SimCustomer",
    "SimInvoice",
    "card_expires_at",
    "card_in_use",
    "charge_outcome",
    "dump_scenario",
    "load_scenario",
    "replacement_takes_over",
    "scenario_from_dict",
    "scenario_schema",
]
