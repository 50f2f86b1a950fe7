"""pool/roles/schedd.py alone: its volume and its Deployment, after the central manager."""

import pulumi

from pool import HTCondorPoolArgs
from pool.roles import Schedd, ScheddArgs, SpoolSpec
from tests.roles import INSTANCE, NAMESPACE, build, credential, objects, pool_config, urn, waited_for

TYPE = "htcondor:index:Schedd"


def schedd():
    args = HTCondorPoolArgs()
    made = Schedd(f"{INSTANCE}-schedd", ScheddArgs(
        INSTANCE, NAMESPACE, args.role("schedd"), SpoolSpec("20Gi", None, "ReadWriteOnce"), pool_config(args),
        credential("schedd"), central_manager=waited_for("central-manager")))
    pulumi.export("deployment_name", made.deployment_name)


def test_it_holds_its_volume_and_its_deployment_which_waits_for_the_central_manager():
    rendered = build(schedd)
    found = objects(rendered, TYPE)
    assert set(found) == {("Deployment", "t-schedd"), ("PersistentVolumeClaim", "t-schedd-spool")}
    assert rendered.outputs["deployment_name"] == "t-schedd"
    deployment = found[("Deployment", "t-schedd")]
    assert {urn(rendered, "ConfigMap", "central-manager-waited-for"), urn(rendered, "Secret", "t-schedd-token"),
            urn(rendered, "PersistentVolumeClaim", "t-schedd-spool")} <= set(deployment.dependencies)
    mounts = {m["mountPath"]: m for m in deployment.inputs["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["/home"] == {"name": "spool", "mountPath": "/home", "subPath": "home"}
    assert found[("PersistentVolumeClaim", "t-schedd-spool")].inputs["spec"]["accessModes"] == ["ReadWriteOnce"]
