"""Errors a user can cause, each with a message that names the culprit and the fix.

Every mistake the API can detect before training raises an `LlmnbError` (a `ValueError`),
so plain Python code can catch it as usual, and the magics turn it into IPython's
one-line `UsageError` (no traceback). Anything else is a bug and keeps its traceback.
"""


class LlmnbError(ValueError):
    """A mistake in what the user asked for; the message says what to do instead."""


class DataError(LlmnbError):
    """The data cannot be used as given (missing file, column, labels...)."""


class ModelNotFoundError(LlmnbError):
    """The model name or folder cannot be loaded."""


class ConfigError(LlmnbError):
    """An option has a value that is not allowed."""


class TrainingError(RuntimeError):
    """Training had to stop (e.g. the loss became NaN); the last good weights are kept."""
