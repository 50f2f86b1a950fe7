"""The one error type for bad input, so every caller reports it the same way."""


class PoolConfigError(ValueError):
    """Bad input: names the key, the bad value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str):
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"{key}: {value!r} is not allowed; expected {allowed}")
