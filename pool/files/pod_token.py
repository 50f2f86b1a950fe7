"""The HTCondor token of a pod that runs no daemon (the metrics exporter, the autoscaler):
copied from its Secret's mount into the directory HTCondor reads tokens from, private to
this process's user, as HTCondor insists (a Secret's file is root's, or readable by the
pod's group). Shipped in the ConfigMap beside the programs that import it."""

import os
import shutil

SOURCE_ENV = "HTCONDOR_POOL_CREDENTIAL_SOURCE"
TARGET_ENV = "HTCONDOR_POOL_CREDENTIAL_DIR"


def install_token() -> None:
    """Every file of the Secret (a token each), replacing an earlier copy."""
    source, target = os.environ.get(SOURCE_ENV), os.environ.get(TARGET_ENV)
    if not source or not target:
        return
    for name in os.listdir(source):
        path = os.path.join(source, name)
        if os.path.isfile(path) and not name.startswith("."):
            copy = os.path.join(target, name)
            if os.path.exists(copy):
                os.remove(copy)
            with open(path, "rb") as given, os.fdopen(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
                                                       "wb") as kept:
                shutil.copyfileobj(given, kept)
