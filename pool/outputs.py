"""Every output of an HTCondorPool, declared once: its name, type, meaning and secrecy.

The name is the component's attribute and the Python stack's output (__main__.py); the
package (pool/package.py) gives each in camelCase, with this type and description, marked
secret where it is. README's Outputs table is printed by `python -m pool.outputs`, and
tests/test_outputs.py keeps the component's attributes, the stack's outputs and README in
step with these declarations.
"""

import re
import sys
from dataclasses import dataclass

# The package schema's types (https://www.pulumi.com/docs/iac/extending-pulumi/schema/).
STRING = {"type": "string"}
INTEGER = {"type": "integer"}
STRINGS_BY_NAME = {"type": "object", "additionalProperties": {"type": "string"}}


@dataclass(frozen=True)
class PoolOutput:
    name: str  # the HTCondorPool attribute and the stack output, in snake_case
    type: dict  # its type in the package's schema
    description: str  # Markdown, for README and the schema alike
    secret: bool = False  # a secret Output: shown only with --show-secrets
    always: bool = True  # False: empty for some inputs (the schema does not require it)

    @property
    def property(self) -> str:
        """The package's output property: the name in camelCase."""
        return re.sub(r"_([a-z])", lambda match: match.group(1).upper(), self.name)


OUTPUTS: tuple[PoolOutput, ...] = (
    PoolOutput("central_manager_address", STRING, "`NAME-central-manager.NAMESPACE.svc.cluster.local:9618`"),
    PoolOutput("namespace", STRING, "the pool's namespace"),
    PoolOutput("workers", INTEGER, "the worker count"),
    PoolOutput("pool_password", STRING, "the pool password, the pool's signing key (secret: "
                                        "`pulumi stack output pool_password --show-secrets`)", secret=True),
    PoolOutput("submit_token", STRING, "the schedd's IDTOKEN, for an outside submit host (secret; see "
                                       "\"Outside hosts\")", secret=True),
    PoolOutput("worker_token", STRING, "the workers' IDTOKEN, for an outside worker (secret)", secret=True),
    PoolOutput("service_name", STRING, "the central manager's Service"),
    PoolOutput("central_manager_deployment_name", STRING, "the central manager's Deployment"),
    PoolOutput("schedd_deployment_name", STRING, "the schedd's Deployment"),
    PoolOutput("worker_deployment_name", STRING, "the workers' Deployment"),
    PoolOutput("worker_pool_deployment_names", STRINGS_BY_NAME,
               "each worker pool's Deployment by pool name, the default pool's as `default`"),
    PoolOutput("metrics_address", STRING, "`NAME-metrics.NAMESPACE.svc.cluster.local:9720`, where the exporter "
                                          "serves `/metrics` (empty with `metrics: false`)", always=False),
)


def markdown_table() -> str:
    """README's Outputs table."""
    rows = ["| output | value |", "| --- | --- |"]
    rows += [f"| `{output.name}` | {output.description} |" for output in OUTPUTS]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
