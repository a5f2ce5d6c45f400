"""The one exception type golden raises, so callers can tell a refereeing failure from a crash."""


class GoldenError(ValueError):
    """A node, tensor or graph that the golden model cannot (or must not) evaluate."""
