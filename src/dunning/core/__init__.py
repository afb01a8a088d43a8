"""Pure decisions: no Django, no clock, no I/O.

Everything here takes plain data (and `now`, where time matters) and returns
plain data, so it can be tested with property tests and driven by a simulator.
"""
