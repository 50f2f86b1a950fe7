"""pool/roles/central_manager.py alone: its Service, its volume and its Deployment, which
waits for what it is given and mounts the signing key."""

import pulumi

from pool import HTCondorPoolArgs
from pool.roles import CentralManager, CentralManagerArgs, SpoolSpec
from tests.roles import CHECKSUM, INSTANCE, NAMESPACE, build, credential, objects, pool_config, urn, waited_for

TYPE = "htcondor:index:CentralManager"


def central_manager(storage_class=None):
    args = HTCondorPoolArgs()
    made = CentralManager(f"{INSTANCE}-central-manager", CentralManagerArgs(
        INSTANCE, NAMESPACE, args.role("centralManager"), SpoolSpec("3Gi", storage_class, "ReadWriteOncePod"),
        pool_config(args), credential("centralManager"), after=[waited_for("policy")]))
    pulumi.export("address", made.address)
    pulumi.export("deployment_name", made.deployment_name)


def test_it_holds_a_service_a_volume_and_a_deployment_and_says_where_it_is():
    rendered = build(central_manager)
    assert set(objects(rendered, TYPE)) == {("Service", "t-central-manager"), ("Deployment", "t-central-manager"),
                                            ("PersistentVolumeClaim", "t-central-manager-spool")}
    assert rendered.outputs["address"] == f"t-central-manager.{NAMESPACE}.svc.cluster.local:9618"
    assert rendered.outputs["deployment_name"] == "t-central-manager"
    claim = objects(rendered, TYPE)[("PersistentVolumeClaim", "t-central-manager-spool")].inputs["spec"]
    assert claim == {"accessModes": ["ReadWriteOncePod"], "resources": {"requests": {"storage": "3Gi"}}}
    assert build(lambda: central_manager("fast")).of_type("kubernetes:core/v1:PersistentVolumeClaim")[0] \
        .inputs["spec"]["storageClassName"] == "fast"


def test_its_pod_waits_for_what_it_mounts_and_what_it_is_given_not_for_the_service():
    rendered = build(central_manager)
    deployment = objects(rendered, TYPE)[("Deployment", "t-central-manager")]
    assert {urn(rendered, "ConfigMap", "t-config"), urn(rendered, "Secret", "t-pool-password"),
            urn(rendered, "ConfigMap", "policy-waited-for"),
            urn(rendered, "PersistentVolumeClaim", "t-central-manager-spool")} <= set(deployment.dependencies)
    assert urn(rendered, "Service", "t-central-manager") not in deployment.dependencies
    template = deployment.inputs["spec"]["template"]
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["credential-source"]["secret"]["secretName"] == "t-pool-password"
    assert volumes["spool"]["persistentVolumeClaim"]["claimName"] == "t-central-manager-spool"
    assert template["metadata"]["annotations"]["htcondor-pool/credential-checksum"] == CHECKSUM
    assert deployment.inputs["spec"]["strategy"] == {"type": "Recreate"}
