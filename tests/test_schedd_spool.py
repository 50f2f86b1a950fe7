"""The schedd's queue outlives its pod: a PersistentVolumeClaim holds SPOOL and the
submitters' home directories, and one schedd at a time mounts it."""

import pytest

from pool import RoleSpec, condor_config
from pool.roles import pods
from tests.condor_config_parser import expand
from tests.render import render
from tests.test_component import DEPLOYMENT, pod_template, urn_of
from tests.test_condor_config import role_view

CLAIM = "kubernetes:core/v1:PersistentVolumeClaim"


def the_claim(rendered, name: str = "htcondor-schedd-spool"):
    (claim,) = [c for c in rendered.of_type(CLAIM) if c.inputs["metadata"]["name"] == name]
    return claim


def test_the_claim_has_safe_defaults(dev):
    claim = the_claim(dev)
    assert claim.inputs["metadata"]["name"] == "htcondor-schedd-spool"
    # No storage class: the cluster's default one. One pod at a time may mount it.
    assert claim.inputs["spec"] == {"accessModes": ["ReadWriteOncePod"],
                                    "resources": {"requests": {"storage": "10Gi"}}}


def test_size_storage_class_and_access_mode_come_from_stack_config():
    rendered = render({"scheddSpoolSize": "200Gi", "scheddStorageClass": "fast-ssd",
                       "scheddSpoolAccessMode": "ReadWriteOnce"})
    assert the_claim(rendered).inputs["spec"] == {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "200Gi"}},
        "storageClassName": "fast-ssd"}


def test_the_schedd_keeps_its_spool_and_the_submitters_homes_on_the_claim(dev):
    pod = pod_template(dev, "schedd")["spec"]
    (volume,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"] == {"claimName": "htcondor-schedd-spool"}
    mounts = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    spool = expand(role_view(dev, "schedd"), "SPOOL")
    assert {(m["mountPath"], m["subPath"]) for m in mounts} == {(spool, "spool"), ("/home", "home")}
    # SPOOL lies inside the LOCAL_DIR emptyDir, so its mount must come after that one.
    paths = [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]]
    assert paths.index(condor_config.LOCAL_DIR) < paths.index(spool)


def test_no_other_role_mounts_the_claim(dev):
    for role in ("centralManager", "worker"):
        volumes = pod_template(dev, role)["spec"]["volumes"]
        assert {"claimName": "htcondor-schedd-spool"} not in [v.get("persistentVolumeClaim") for v in volumes]
    volumes = pod_template(dev, "worker")["spec"]["volumes"]
    assert not [v for v in volumes if "persistentVolumeClaim" in v]


def test_never_two_schedds_on_the_volume(dev):
    (schedd,) = [r for r in dev.of_type(DEPLOYMENT) if r.name == "htcondor-schedd"]
    assert schedd.inputs["spec"]["replicas"] == 1
    # A rollout stops the old pod before starting the new one; ReadWriteOncePod holds a
    # replacement back while a deleted pod is still terminating.
    assert schedd.inputs["spec"]["strategy"] == {"type": "Recreate"}
    assert the_claim(dev).inputs["spec"]["accessModes"] == ["ReadWriteOncePod"]


def test_the_schedd_is_created_after_its_claim(dev):
    (schedd,) = [r for r in dev.of_type(DEPLOYMENT) if r.name == "htcondor-schedd"]
    assert urn_of(dev, CLAIM, "htcondor-schedd-spool") in schedd.dependencies


def test_a_worker_takes_no_claim():
    with pytest.raises(ValueError, match="only they, mount a spool claim"):
        pods.pod_spec("worker", RoleSpec("a:1", "1", "1Gi"), "c", "s", 60, spool_claim="x-schedd-spool")
