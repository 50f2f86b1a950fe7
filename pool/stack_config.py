"""Stack config (`htcondor-pool:*`) into (component name, HTCondorPoolArgs).

Every key is declared in pool/settings.py; here each is read, and checked by its rule
naming the config key, before any resource is registered. Defaults live in code because
the Pulumi SDK never reads Pulumi.yaml's declared defaults; a test keeps the two in step.
"""

import pulumi

from .args import HTCondorPoolArgs, pool_args_by_key
from .errors import PoolConfigError
from .settings import BY_KEY, SETTINGS

PROJECT = "htcondor-pool"
# Every key this program reads, so a typo ("worker" for "workers") fails loudly instead of
# being ignored.
KEYS = tuple(setting.key for setting in SETTINGS)


def config_key(key: str) -> str:
    """The name every error message uses."""
    return f"{PROJECT}:{key}"


def load_pool_args(config: pulumi.Config | None = None) -> tuple[str, HTCondorPoolArgs]:
    config = config or pulumi.Config(PROJECT)
    _reject_unknown_keys()
    raw = {setting.key: config.get(setting.key) for setting in SETTINGS}
    return pool_args_by_key({key: BY_KEY[key].decode(config_key(key), text)
                             for key, text in raw.items() if text is not None}, config_key)


def _reject_unknown_keys() -> None:
    prefix = f"{PROJECT}:"
    present = set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.config.get_config_env())
    for full_key in sorted(present):
        if full_key.startswith(prefix) and full_key[len(prefix):] not in KEYS:
            raise PoolConfigError(full_key, pulumi.runtime.config.get_config(full_key),
                                  f"a known key: one of {', '.join(KEYS)}")
