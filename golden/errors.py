"""The project's error hierarchy, rooted here because golden is the bottom floor.

``HwcspError`` is every error caused by the user's input or by a check that failed on it: the
command line prints it as one line and exits non-zero, never with a traceback. Each stage
subclasses it (``hwcsp.errors.UserError``, ``GoldenError``); golden imports nothing above it.
"""


class HwcspError(Exception):
    """Bad input or a failed check: reported as one readable line, never a traceback."""


class GoldenError(HwcspError, ValueError):
    """A node, tensor or graph that the golden model cannot (or must not) evaluate."""
