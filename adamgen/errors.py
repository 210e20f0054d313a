"""Errors that reach the user as one clear line."""


class AdamgenError(Exception):
    """Base class: the command line prints the message and exits non-zero."""


class ConfigError(AdamgenError, ValueError):
    """A configuration key is missing, unknown, mistyped or out of range."""

    def __init__(self, key: str, problem: str, value: object = ...):
        self.key = key
        self.problem = problem
        self.value = value
        shown = "" if value is ... else f" = {value!r}"
        super().__init__(f"config key '{key}'{shown}: {problem}")


class DataFileError(AdamgenError, OSError):
    """An input file is missing, unreadable, or not what it claims to be."""


class ResourceError(AdamgenError):
    """A run would need more memory or disk than there is."""
