"""The version of llmnb, in one place: the package and saved runs read it here (a test keeps pyproject.toml equal)."""

__version__ = "0.1.0"
