"""Every error and warning llmnb raises: errors a user can cause, each with a message that names the
culprit and the fix, and the warnings that say what llmnb did instead.

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


# ---- raised by the tools (llmnb/tools/): each names the function that could not go on


class ExplainError(LlmnbError):
    """explain() was asked for something the model or text cannot give."""


class ExportError(LlmnbError):
    """export_script or launch was given something it cannot use."""


class ProbeError(LlmnbError):
    """A probe was given something it cannot use."""


class ScalingError(LlmnbError):
    """step_time() was given something it cannot time."""


class CompressError(LlmnbError):
    """quantize, prune or ensemble was given something it cannot use."""


class LaunchError(TrainingError):
    """The launched script failed; the message ends with the tail of its output."""


# ---- warnings: llmnb went on, and says what it did or could not do


class DiskWarning(UserWarning):
    """A file llmnb wanted to write could not be written; training went on."""


class Notice(UserWarning):
    """Something llmnb fixed for the user and tells them about in one line."""
