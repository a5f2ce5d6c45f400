"""Errors caused by the user's input (printed as one line, exit code 2)."""

from golden.errors import HwcspError


class UserError(HwcspError):
    """Bad input: unknown model, unusable checkpoint, stale build directory, ..."""


class NotImplementedStage(UserError):
    """A stage that is not built yet: says so and writes nothing (exit code 3)."""
