"""The generated HTCondor configuration, parsed as each role's pods read it."""

import pytest

from pool import condor_config
from pool.roles import pods
from tests.condor_config_parser import as_list, expand, parse
from tests.render import render

HOST = "htcondor-central-manager.htcondor.svc.cluster.local"


def role_view(rendered, role):
    """The files a role's pods mount, in the order HTCondor reads them."""
    (config_map,) = [c for c in rendered.of_type("kubernetes:core/v1:ConfigMap")
                     if c.inputs["metadata"]["name"] == "htcondor-config"]
    data = config_map.inputs["data"]
    keys = [k for k in pods.role_config_keys(role) if k not in pods.SCRIPTS]
    entry, snippets = keys[0], sorted(keys[1:])  # LOCAL_CONFIG_DIR is read in name order
    return parse(data[entry], *(data[k] for k in snippets))


@pytest.mark.parametrize("role,daemons", [
    ("centralManager", ["MASTER", "COLLECTOR", "NEGOTIATOR"]),
    ("schedd", ["MASTER", "SCHEDD"]),
    ("worker", ["MASTER", "STARTD"]),
])
def test_each_role_runs_its_daemons(dev, role, daemons):
    assert as_list(role_view(dev, role)["DAEMON_LIST"]) == daemons


@pytest.mark.parametrize("role", ["schedd", "worker"])
def test_schedd_and_workers_find_the_central_manager_through_the_service(dev, role):
    config = role_view(dev, role)
    assert expand(config, "COLLECTOR_HOST") == f"{HOST}:9618"
    assert config["COLLECTOR_NAME"] == "HTCondor on Kubernetes"


def test_central_manager_daemons_report_to_their_own_collector_not_the_service(dev):
    # The Service routes only to ready pods; the central manager is not ready before its
    # collector answers, so through the Service its negotiator's first update is refused.
    config = role_view(dev, "centralManager")
    assert expand(config, "COLLECTOR_HOST") == "127.0.0.1:9618"
    assert expand(config, "CONDOR_HOST") == HOST


@pytest.mark.parametrize("role", ["centralManager", "schedd", "worker"])
def test_security_is_required_and_token_based(dev, role):
    config = role_view(dev, role)
    for aspect in ("AUTHENTICATION", "ENCRYPTION", "INTEGRITY"):
        assert config[f"SEC_DEFAULT_{aspect}"] == "REQUIRED"
    for methods in ("SEC_DEFAULT_AUTHENTICATION_METHODS", "SEC_CLIENT_AUTHENTICATION_METHODS"):
        assert as_list(config[methods]) == ["FS", "IDTOKENS"]  # no shared password between pods


def test_the_central_manager_reads_the_signing_key_and_the_others_their_token(dev):
    key = pods.credential_file("centralManager")
    config = role_view(dev, "centralManager")
    assert config["SEC_TOKEN_POOL_SIGNING_KEY_FILE"] == key and config["SEC_PASSWORD_FILE"] == key
    assert "SEC_TOKEN_DIRECTORY" not in config
    for role in ("schedd", "worker"):
        config = role_view(dev, role)
        assert not [k for k, v in config.items() if "POOL" in v and k.startswith("SEC_")], role
        assert pods.credential_file(role) == f"{config['SEC_TOKEN_DIRECTORY']}/token"


CM_DAEMONS = {"condor@password", f"condor_pool@{HOST}"}  # hold the key: sign their own tokens
SUBMIT, EXECUTE = f"submit@{HOST}", f"worker@{HOST}"


@pytest.mark.parametrize("role", ["centralManager", "schedd", "worker"])
def test_each_identity_may_do_only_what_its_role_does(dev, role):
    config = role_view(dev, role)
    allowed = lambda level: set(as_list(expand(config, f"ALLOW_{level}")))  # noqa: E731
    # Workers advertise slots and masters; the schedd advertises itself and its master.
    assert allowed("ADVERTISE_STARTD") == {EXECUTE}
    assert allowed("ADVERTISE_SCHEDD") == {SUBMIT}
    assert allowed("ADVERTISE_MASTER") == CM_DAEMONS | {SUBMIT, EXECUTE}
    # Only the central manager's daemons act as daemons, negotiate or administer the pool
    # (with root on each pod, through the file system).
    assert allowed("DAEMON") == CM_DAEMONS
    assert allowed("NEGOTIATOR") == CM_DAEMONS
    # Locally (FS) root, or condor where a pod runs as condor, administers that pod.
    assert allowed("ADMINISTRATOR") == CM_DAEMONS | {f"root@{HOST}", f"condor@{HOST}"}
    assert allowed("READ") == allowed("WRITE") == {"*"}


@pytest.mark.parametrize("role", ["centralManager", "schedd", "worker"])
def test_nothing_asks_a_confined_container_for_what_it_may_not_do(dev, role):
    """Under the runtime's seccomp profile and a read-only image (found on the real cluster,
    where each logged an error): no session keyring, no CA written into the image, no mail."""
    config = role_view(dev, role)
    assert config["DISCARD_SESSION_KEYRING_ON_STARTUP"] == "False"
    assert config["COLLECTOR_BOOTSTRAP_SSL_CERTIFICATE"] == "False"
    assert config["CONDOR_ADMIN"] == ""
    assert config["LINUX_KERNEL_TUNING_SCRIPT"] == ""


def test_one_uid_and_trust_domain_pool_wide(dev):
    domains = {(expand(role_view(dev, r), "UID_DOMAIN"), expand(role_view(dev, r), "TRUST_DOMAIN"))
               for r in ("centralManager", "schedd", "worker")}
    assert domains == {(HOST, HOST)}


def test_worker_has_one_partitionable_slot_sized_from_its_container(dev):
    config = role_view(dev, "worker")
    assert config["NUM_SLOTS_TYPE_1"] == "1"
    assert config["SLOT_TYPE_1_PARTITIONABLE"].lower() == "true"
    assert "cpus=100%" in config["SLOT_TYPE_1"] and "memory=100%" in config["SLOT_TYPE_1"]
    assert config["NUM_CPUS"] == f"$ENV({condor_config.CPUS_ENV})"
    assert config["MEMORY"] == f"$ENV({condor_config.MEMORY_MB_ENV})"
    # ... and the pod sets those variables from its own limits.
    (deployment,) = [r for r in dev.of_type("kubernetes:apps/v1:Deployment") if r.name == "htcondor-worker"]
    env = {e["name"]: e for e in deployment.inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[condor_config.CPUS_ENV]["valueFrom"]["resourceFieldRef"] == {
        "containerName": "htcondor", "resource": "limits.cpu", "divisor": "1"}
    assert env[condor_config.MEMORY_MB_ENV]["valueFrom"]["resourceFieldRef"] == {
        "containerName": "htcondor", "resource": "limits.memory", "divisor": "1Mi"}


def test_a_workers_slot_advertises_its_disk_from_its_containers_limit(dev):
    config = role_view(dev, "worker")
    # in KiB; $INT() takes a macro's name, so the arithmetic sits in a macro of its own
    assert config["POOL_SLOT_DISK_KB"] == f"$ENV({condor_config.DISK_KB_ENV}) * 90 / 100"
    assert config["DISK"] == "$INT(POOL_SLOT_DISK_KB)"
    (deployment,) = [r for r in dev.of_type("kubernetes:apps/v1:Deployment") if r.name == "htcondor-worker"]
    env = {e["name"]: e for e in deployment.inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[condor_config.DISK_KB_ENV]["valueFrom"]["resourceFieldRef"] == {
        "containerName": "htcondor", "resource": "limits.ephemeral-storage", "divisor": "1Ki"}


@pytest.mark.parametrize("role,disk", [("centralManager", "1Gi"), ("schedd", "2Gi"), ("worker", "10Gi")])
def test_every_container_has_its_disk_as_request_limit_and_the_size_of_its_htcondor_directories(dev, role, disk):
    from tests.test_component import pod_template
    pod = pod_template(dev, role)["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["requests"]["ephemeral-storage"] == disk
    assert container["resources"]["limits"]["ephemeral-storage"] == disk
    on_disk = [v for v in pod["volumes"] if "emptyDir" in v and v["emptyDir"].get("medium") != "Memory"]
    assert {v["name"] for v in on_disk} == {"local", "tmp"}
    assert all(v["emptyDir"]["sizeLimit"] == disk for v in on_disk)


def test_disk_comes_from_stack_config_per_role_and_per_worker_pool():
    from tests.test_component import pod_template
    rendered = render({"resources": '{"worker": {"disk": "50Gi"}}',
                       "workerPools": '{"scratch": {"disk": "500Gi"}, "plain": {}}'})
    limits = {d.name: d.inputs["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["ephemeral-storage"]
              for d in rendered.of_type("kubernetes:apps/v1:Deployment")}
    assert limits == {"htcondor-central-manager": "1Gi", "htcondor-schedd": "2Gi", "htcondor-worker": "50Gi",
                      "htcondor-worker-scratch": "500Gi", "htcondor-worker-plain": "50Gi",
                      "htcondor-metrics": "256Mi"}
    assert {"name": "local", "emptyDir": {"sizeLimit": "50Gi"}} in pod_template(rendered, "worker")["spec"]["volumes"]


def test_worker_can_run_jobs_in_an_unprivileged_container(dev):
    config = role_view(dev, "worker")
    assert "MOUNT_UNDER_SCRATCH" in config and config["MOUNT_UNDER_SCRATCH"] == ""
    assert config["START"].lower() == "true"


def test_nothing_from_the_image_but_its_install_paths(dev):
    config = role_view(dev, "worker")
    assert config["@directives"] == [("include", "ifexist : /etc/condor/condor_config")]
    assert config["LOCAL_CONFIG_FILE"] == ""
    assert config["LOCAL_CONFIG_DIR"] == condor_config.SNIPPET_DIR
    assert config["LOCAL_DIR"] == condor_config.LOCAL_DIR


def test_intervals_are_shorter_than_htcondors_defaults(dev):
    config = role_view(dev, "schedd")
    # NEGOTIATOR_UPDATE_INTERVAL too: HTCondor's negotiator re-sends its ad (and with it
    # its last cycle's statistics, which the metrics export) only every 300 s by default;
    # and COLLECTOR_UPDATE_INTERVAL, the collector's own ad (its update counts): 900 s.
    for knob in ("UPDATE_INTERVAL", "SCHEDD_INTERVAL", "MASTER_UPDATE_INTERVAL", "NEGOTIATOR_UPDATE_INTERVAL",
                 "COLLECTOR_UPDATE_INTERVAL"):
        assert 0 < int(config[knob]) < 300
    assert 0 < int(config["NEGOTIATOR_INTERVAL"]) < 60
    # A submit's request for a cycle is served within seconds, not 20 (HTCondor's default).
    assert 0 < int(config["NEGOTIATOR_CYCLE_DELAY"]) <= 5 and 0 < int(config["NEGOTIATOR_MIN_INTERVAL"]) <= 5


def test_the_update_interval_comes_from_stack_config_for_every_daemon():
    from tests.render import render
    rendered = render({"updateIntervalSeconds": "60"})
    for role in ("centralManager", "schedd", "worker"):
        config = role_view(rendered, role)
        assert [int(config[k]) for k in ("UPDATE_INTERVAL", "SCHEDD_INTERVAL", "MASTER_UPDATE_INTERVAL",
                                         "NEGOTIATOR_UPDATE_INTERVAL", "COLLECTOR_UPDATE_INTERVAL")] == [60] * 5


def test_pool_name_reaches_the_collector_name():
    from tests.render import render
    assert role_view(render({"poolName": "CHTC test pool"}), "centralManager")["COLLECTOR_NAME"] == "CHTC test pool"


def test_a_leaving_workers_jobs_get_its_grace_period_less_the_drain_margin_to_finish():
    from tests.render import render
    worker = role_view(render({"workerGracePeriodSeconds": "300"}), "worker")
    assert int(worker["MAXJOBRETIREMENTTIME"]) == 300 - 30


@pytest.mark.parametrize("role", ["centralManager", "schedd"])
def test_only_workers_retire_jobs(dev, role):
    assert "MAXJOBRETIREMENTTIME" not in role_view(dev, role)
