"""Fair share outlives the central manager: its SPOOL, where the negotiator keeps every
user's accumulated usage and priority (Accountantnew.log), is a PersistentVolumeClaim of
its own, mounted by one central manager at a time, which still runs as condor with no
capability (Pod Security `restricted`)."""

from pool import condor_config
from pool.security import pod_security_level
from tests.condor_config_parser import expand
from tests.render import render
from tests.test_component import DEPLOYMENT, pod_template, urn_of
from tests.test_condor_config import role_view
from tests.test_schedd_spool import CLAIM, the_claim

NAME = "htcondor-central-manager-spool"


def test_the_claim_has_safe_defaults(dev):
    claim = the_claim(dev, NAME)
    assert claim.inputs["metadata"]["labels"]["app.kubernetes.io/component"] == "central-manager"
    # No storage class: the cluster's default one. One pod at a time may mount it.
    assert claim.inputs["spec"] == {"accessModes": ["ReadWriteOncePod"],
                                    "resources": {"requests": {"storage": "1Gi"}}}


def test_size_storage_class_and_access_mode_come_from_stack_config():
    rendered = render({"centralManagerSpoolSize": "5Gi", "centralManagerStorageClass": "fast-ssd",
                       "centralManagerSpoolAccessMode": "ReadWriteOnce"})
    assert the_claim(rendered, NAME).inputs["spec"] == {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}},
        "storageClassName": "fast-ssd"}
    # The schedd's claim is its own.
    assert the_claim(rendered).inputs["spec"]["resources"] == {"requests": {"storage": "10Gi"}}


def test_the_central_manager_keeps_its_spool_on_the_claim(dev):
    pod = pod_template(dev, "centralManager")["spec"]
    (volume,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"] == {"claimName": NAME}
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    # The whole volume: its root is what the kubelet makes writable by the pod's fsGroup.
    assert mount == {"name": volume["name"], "mountPath": expand(role_view(dev, "centralManager"), "SPOOL")}
    paths = [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]]
    assert paths.index(condor_config.LOCAL_DIR) < paths.index(mount["mountPath"])


def test_it_still_runs_as_condor_and_meets_restricted(dev):
    pod = pod_template(dev, "centralManager")["spec"]
    assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["fsGroup"] == 64
    assert pod_security_level(pod) == "restricted"


def test_never_two_negotiators_on_the_volume(dev):
    (cm,) = [r for r in dev.of_type(DEPLOYMENT) if r.name == "htcondor-central-manager"]
    assert cm.inputs["spec"]["replicas"] == 1
    assert cm.inputs["spec"]["strategy"] == {"type": "Recreate"}
    assert urn_of(dev, CLAIM, NAME) in cm.dependencies
