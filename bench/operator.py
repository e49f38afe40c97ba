"""The principal the benchmarks apply commands as: an operator at the store, as the CLI is."""

from engine.access import Principal, Role

OPERATOR = Principal("bench", Role.OPERATOR)
