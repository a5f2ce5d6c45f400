"""The base class of errors caused by the user's input (printed as one line, exit code 2)."""


class UserError(Exception):
    """Bad input: unknown model, unusable checkpoint, stale build directory, ..."""


class NotImplementedStage(UserError):
    """A stage that is not built yet: says so and writes nothing (exit code 3)."""
