"""Burst workers as the program renders them (Pulumi mocks): an autoscaler only when some
worker pool may burst, from the pool's own image, the one pod with a service-account token,
whose Role allows only what it does and whose HTCondor token may only READ; the burst Job it
builds from a rendered worker Deployment is a valid batch/v1 Job whose pod is the worker's."""

import base64
import json

import kubernetes_validate
import pytest

import jwt

from pool.credentials import schedd_key
from pool.idtokens import claims, verify
from pool.password import unscramble
from pool.security import pod_security_level
from tests.pod_programs import load
from tests.render import REPO, render
from tests.test_component import DEPLOYMENT
from tests.test_schema import KUBERNETES_VERSIONS

autoscaler = load("autoscaler")

BURST = {"workers": "0", "maxWorkers": "2", "idleShutdownSeconds": "45",
         "workerPools": '{"gpu": {"workers": 1, "maxWorkers": 3, "gpus": 1, "cpu": "4", "memory": "16Gi"}, '
                        '"fixed": {"workers": 2}}'}


@pytest.fixture(scope="module")
def burst():
    return render(BURST)


def named(rendered, type_: str, name: str) -> dict:
    (found,) = [r.inputs for r in rendered.resources if r.type == type_ and r.inputs["metadata"]["name"] == name]
    return found


def deployments(rendered) -> dict[str, dict]:
    return {r.inputs["metadata"]["name"]: r.inputs for r in rendered.of_type(DEPLOYMENT)}


@pytest.mark.parametrize("config", [{}, {"workers": "3", "maxWorkers": "3"},
                                    {"workerPools": '{"gpu": {"workers": 2, "maxWorkers": 2}}'}])
def test_no_autoscaler_where_no_pool_may_burst(config):
    rendered = render(config)
    assert not [r for r in rendered.resources if "autoscaler" in r.name]
    assert "autoscaler.py" not in named(rendered, "kubernetes:core/v1:ConfigMap", "htcondor-config")["data"]


def test_one_autoscaler_from_the_pools_own_image_and_pulumi_keeps_every_replicas(burst):
    found = deployments(burst)
    autoscaler_ = found["htcondor-autoscaler"]
    assert autoscaler_["spec"]["replicas"] == 1 and autoscaler_["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = autoscaler_["spec"]["template"]["spec"]["containers"]
    assert container["image"] == found["htcondor-central-manager"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["command"] == ["python3", "/etc/htcondor-pool/autoscaler.py"]
    config = named(burst, "kubernetes:core/v1:ConfigMap", "htcondor-config")["data"]
    assert config["autoscaler.py"] == (REPO / "pool" / "files" / "autoscaler.py").read_text()
    # The worker Deployments keep the always-on floor: bursting never touches replicas.
    assert found["htcondor-worker"]["spec"]["replicas"] == 0
    assert found["htcondor-worker-gpu"]["spec"]["replicas"] == 1
    assert found["htcondor-worker-fixed"]["spec"]["replicas"] == 2


def test_the_autoscaler_knows_each_pools_shape_as_its_slot_advertises_it(burst):
    pod = deployments(burst)["htcondor-autoscaler"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    shapes = {s["name"]: s for s in json.loads(env["HTCONDOR_POOL_BURST_POOLS"]["value"])}
    assert shapes["default"] == {"name": "default", "deployment": "htcondor-worker", "workers": 0, "max_workers": 2,
                                 "idle_shutdown_seconds": 45, "cpus": 1, "memory_mb": 2048,
                                 "disk_kb": 10 * 2**20 * 90 // 100, "gpus": 0}
    assert shapes["gpu"]["max_workers"] == 3 and shapes["gpu"]["gpus"] == 1 and shapes["gpu"]["cpus"] == 4
    assert shapes["gpu"]["idle_shutdown_seconds"] == 45  # the default pool's, unless set
    assert shapes["fixed"]["max_workers"] == 2  # its own workers: no bursting
    may, may_not = autoscaler.shapes_from(env["HTCONDOR_POOL_BURST_POOLS"]["value"])
    assert [s.name for s in may] == ["default", "gpu"] and [s.name for s in may_not] == ["fixed"]
    assert env["HTCONDOR_POOL_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_only_the_autoscaler_mounts_a_service_account_token(burst):
    for name, deployment in deployments(burst).items():
        pod = deployment["spec"]["template"]["spec"]
        if name == "htcondor-autoscaler":
            assert pod["automountServiceAccountToken"] is True
            assert pod["serviceAccountName"] == "htcondor-autoscaler"
        else:
            assert pod["automountServiceAccountToken"] is False, name
            assert "serviceAccountName" not in pod, name
    account = named(burst, "kubernetes:core/v1:ServiceAccount", "htcondor-autoscaler")
    assert account["automountServiceAccountToken"] is False  # only the pod that asks gets it


def test_its_role_allows_only_what_it_does_in_the_pools_namespace(burst):
    role = named(burst, "kubernetes:rbac.authorization.k8s.io/v1:Role", "htcondor-autoscaler")
    assert role["metadata"]["namespace"] == "htcondor"
    assert role["rules"] == [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"],
         "resourceNames": ["htcondor-worker", "htcondor-worker-gpu"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list", "create"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    ]
    binding = named(burst, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "htcondor-autoscaler")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "htcondor-autoscaler"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "htcondor-autoscaler",
                                    "namespace": "htcondor"}]
    assert not burst.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")


def test_its_htcondor_tokens_may_only_read_and_the_schedd_verifies_one_with_a_key_of_its_own(burst):
    pod = deployments(burst)["htcondor-autoscaler"]["spec"]["template"]["spec"]
    (source,) = [v for v in pod["volumes"] if "secret" in v]
    secret = named(burst, "kubernetes:core/v1:Secret", source["secret"]["secretName"])
    assert secret["metadata"]["name"] == "htcondor-autoscaler-token"
    tokens = {name: base64.b64decode(value).decode() for name, value in secret["data"].items()}
    assert {name: claims(token)["scope"] for name, token in tokens.items()} == {
        "token": "condor:/READ", "schedd-token": "condor:/READ"}
    # The collector's is signed with the pool's key; the schedd's with SCHEDD, which the
    # schedd holds (derived from the pool's, and not it), and no other pod.
    verify(tokens["token"], burst.password)
    verify(tokens["schedd-token"], schedd_key(burst.password), key_id="SCHEDD")
    with pytest.raises(jwt.InvalidTokenError):
        verify(tokens["schedd-token"], burst.password)
    schedd = named(burst, "kubernetes:core/v1:Secret", "htcondor-schedd-token")
    assert unscramble(base64.b64decode(schedd["data"]["SCHEDD"])) == schedd_key(burst.password)
    assert schedd_key(burst.password) != burst.password
    holders = [r.inputs["metadata"]["name"] for r in burst.of_type("kubernetes:core/v1:Secret")
               if "SCHEDD" in r.inputs.get("data", {})]
    assert holders == ["htcondor-schedd-token"]
    assert "htcondor-pool-password" not in json.dumps(pod)  # never the signing key
    # Without burst workers the schedd holds its token only, as before.
    assert list(named(render({}), "kubernetes:core/v1:Secret", "htcondor-schedd-token")["data"]) == ["token"]


def test_the_namespace_still_enforces_what_every_pod_meets(burst):
    pods = {n: d["spec"]["template"]["spec"] for n, d in deployments(burst).items()}
    assert pod_security_level(pods["htcondor-autoscaler"]) == "restricted"
    (namespace,) = [r.inputs for r in burst.of_type("kubernetes:core/v1:Namespace")]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == \
        named(render({}), "kubernetes:core/v1:Namespace", "htcondor")["metadata"]["labels"][
            "pod-security.kubernetes.io/enforce"]


def test_the_autoscaler_reaches_the_api_server_besides_htcondor(burst):
    policy = named(burst, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "htcondor-autoscaler-egress")
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "autoscaler"
    assert policy["spec"]["egress"] == [{"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}]
    assert not [r for r in render({**BURST, "networkPolicy": "false"}).resources if "egress" in r.name]


def test_it_is_created_after_the_worker_deployments_it_reads(burst):
    (resource,) = [r for r in burst.of_type(DEPLOYMENT) if r.name == "htcondor-autoscaler"]
    workers = {r.urn for r in burst.of_type(DEPLOYMENT) if r.name in ("htcondor-worker", "htcondor-worker-gpu")}
    assert workers <= set(resource.dependencies)


@pytest.mark.parametrize("version", [KUBERNETES_VERSIONS[0], KUBERNETES_VERSIONS[-1]])
@pytest.mark.parametrize("deployment", ["htcondor-worker", "htcondor-worker-gpu"])
def test_a_burst_job_is_a_valid_job_whose_pod_is_the_workers(burst, deployment, version):
    rendered = json.loads(json.dumps(deployments(burst)[deployment]))
    rendered["metadata"]["uid"] = "0b9f2d1c-1111-2222-3333-444455556666"  # as the API returns it
    shapes = {s.deployment: s for s in autoscaler.shapes_from(json.dumps(
        [json.loads(e["value"]) for e in deployments(burst)["htcondor-autoscaler"]["spec"]["template"]["spec"]
         ["containers"][0]["env"] if e["name"] == "HTCONDOR_POOL_BURST_POOLS"][0]))[0]}
    job = autoscaler.burst_job(rendered, shapes[deployment], "htcondor")
    kubernetes_validate.validate(job, version, strict=True)
    pod, worker = job["spec"]["template"]["spec"], rendered["spec"]["template"]["spec"]
    assert pod_security_level(pod) == pod_security_level(worker)
    # Same probes, drain, least privilege, placement and GPUs as the pool's other workers.
    for key in ("securityContext", "terminationGracePeriodSeconds", "automountServiceAccountToken", "volumes"):
        assert pod[key] == worker[key], key
    for key in ("lifecycle", "readinessProbe", "livenessProbe", "resources", "securityContext", "image"):
        assert pod["containers"][0][key] == worker["containers"][0][key], key
    assert job["metadata"]["labels"]["app.kubernetes.io/instance"] == "htcondor"


def test_prometheus_finds_the_autoscalers_decisions_as_it_finds_the_exporter():
    rendered = render({**BURST, "metricsAllowedCidrs": '["10.42.7.0/24"]', "metricsServiceMonitor": "true"})
    pod = deployments(rendered)["htcondor-autoscaler"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9720, "protocol": "TCP"}]
    assert {"name": "HTCONDOR_POOL_METRICS_PORT", "value": "9720"} in container["env"]
    service = named(rendered, "kubernetes:core/v1:Service", "htcondor-autoscaler")
    assert service["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "9720",
                                                  "prometheus.io/path": "/metrics"}
    assert service["spec"]["selector"] == \
        deployments(rendered)["htcondor-autoscaler"]["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    # The one way in to it: its metrics port, from where metricsAllowedCidrs says.
    policy = named(rendered, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "htcondor-autoscaler-ingress")
    assert policy["spec"]["podSelector"]["matchLabels"] == service["spec"]["selector"]
    assert policy["spec"]["ingress"] == [{"from": [{"ipBlock": {"cidr": "10.42.7.0/24"}}],
                                          "ports": [{"protocol": "TCP", "port": 9720}]}]
    (monitor,) = [r.inputs for r in rendered.resources if r.name == "htcondor-autoscaler-monitor"]
    selects = monitor["spec"]["selector"]["matchLabels"].items()
    assert selects <= service["metadata"]["labels"].items()
    assert not selects <= named(rendered, "kubernetes:core/v1:Service", "htcondor-metrics")["metadata"]["labels"].items()


def test_with_metrics_off_the_autoscaler_serves_nothing():
    rendered = render({**BURST, "metrics": "false"})
    (container,) = deployments(rendered)["htcondor-autoscaler"]["spec"]["template"]["spec"]["containers"]
    assert "ports" not in container
    assert "HTCONDOR_POOL_METRICS_PORT" not in {e["name"] for e in container["env"]}
    assert not [r for r in rendered.resources if r.name in ("htcondor-autoscaler-ingress", "htcondor-autoscaler-monitor")
                or (r.type == "kubernetes:core/v1:Service" and r.name == "htcondor-autoscaler")]
