"""The one error type for bad input, so every caller reports it the same way."""

from pulumi.errors import RunError


class PoolConfigError(RunError, ValueError):
    """Bad input: names the key, the bad value and what is allowed.

    A RunError, as Pulumi's own ConfigTypeError and ConfigMissingError are: the CLI then
    ends the program with this one line, instead of "Program failed with an unhandled
    exception" and a traceback."""

    def __init__(self, key: str, value: object, allowed: str):
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"{key}: {value!r} is not allowed; expected {allowed}")
