"""Bad stack config fails before any resource is registered, naming the key, the bad value
and what is allowed."""

import pytest

from pool import HTCondorPoolArgs, PoolConfigError
from tests.render import render

CASES = [
    ({"passwordVersion": "two words"}, "htcondor-pool:passwordVersion: 'two words' is not allowed; "
     "expected 1 to 63 letters, digits"),
    ({"workerGracePeriodSeconds": "30"}, "htcondor-pool:workerGracePeriodSeconds: 30 is not allowed; "
     "expected a whole number of seconds from 60 to 86400"),
    ({"workerGracePeriodSeconds": "10m"}, "htcondor-pool:workerGracePeriodSeconds: '10m' is not allowed; "
     "expected a whole number of seconds from 60 to 86400"),
    ({"scheddSpoolSize": "lots"}, "htcondor-pool:scheddSpoolSize: 'lots' is not allowed; "
     "expected a Kubernetes quantity of at least 1048576 bytes"),
    ({"scheddStorageClass": "Fast SSD"}, "htcondor-pool:scheddStorageClass: 'Fast SSD' is not allowed; "
     "expected a DNS-1123 subdomain"),
    ({"scheddSpoolAccessMode": "ReadWriteMany"}, "htcondor-pool:scheddSpoolAccessMode: 'ReadWriteMany' is not "
     "allowed; expected one of ReadWriteOncePod, ReadWriteOnce"),
    ({"allowedCidrs": '["10.0.0.1/8"]'}, "htcondor-pool:allowedCidrs[0]: '10.0.0.1/8' is not allowed; "
     "expected an IPv4 or IPv6 network in CIDR notation with no host bits set"),
    ({"allowedCidrs": '["192.0.2.0/24", "everywhere"]'}, "htcondor-pool:allowedCidrs[1]: 'everywhere' is not allowed"),
    ({"allowedCidrs": "192.0.2.0/24"}, "htcondor-pool:allowedCidrs: '192.0.2.0/24' is not allowed; "
     'expected a list of CIDRs, e.g. ["192.0.2.0/24"]'),
    ({"networkPolicy": "false", "allowedCidrs": '["192.0.2.0/24"]'}, "htcondor-pool:allowedCidrs: "
     "['192.0.2.0/24'] is not allowed; expected empty while htcondor-pool:networkPolicy is false"),
    ({"networkPolicy": "off"}, "htcondor-pool:networkPolicy: 'off' is not allowed; expected true or false"),
    ({"updateIntervalSeconds": "2"}, "htcondor-pool:updateIntervalSeconds: 2 is not allowed; "
     "expected a whole number of seconds from 5 to 3600"),
    ({"updateIntervalSeconds": "1m"}, "htcondor-pool:updateIntervalSeconds: '1m' is not allowed; "
     "expected a whole number of seconds from 5 to 3600"),
    ({"workers": "-1"}, "htcondor-pool:workers: -1 is not allowed; expected a whole number >= 0"),
    ({"workers": "3", "maxWorkers": "2"},
     "htcondor-pool:maxWorkers: 2 is not allowed; expected a whole number >= htcondor-pool:workers (3)"),
    ({"maxWorkers": "many"}, "htcondor-pool:maxWorkers: 'many' is not allowed; expected a whole number >= 0"),
    ({"idleShutdownSeconds": "5"},
     "htcondor-pool:idleShutdownSeconds: 5 is not allowed; expected a whole number of seconds from 10 to 86400"),
    ({"workers": "2", "workerPools": '{"gpu": {"maxWorkers": 1}}'},
     "htcondor-pool:workerPools.gpu.maxWorkers: 1 is not allowed; expected a whole number >= htcondor-pool:workers (2)"),
    ({"workerPools": '{"gpu": {"workers": 4, "maxWorkers": 3}}'},
     "htcondor-pool:workerPools.gpu.maxWorkers: 3 is not allowed; expected a whole number >= "
     "htcondor-pool:workerPools.gpu.workers (4)"),
    ({"workerPools": '{"gpu": {"idleShutdownSeconds": 0}}'},
     "htcondor-pool:workerPools.gpu.idleShutdownSeconds: 0 is not allowed; expected a whole number of seconds "
     "from 10 to 86400"),
    ({"workers": "two"}, "htcondor-pool:workers: 'two' is not allowed; expected a whole number >= 0"),
    ({"workers": "1.5"}, "htcondor-pool:workers: '1.5' is not allowed; expected a whole number >= 0"),
    ({"namespace": "Batch_Jobs"}, "htcondor-pool:namespace: 'Batch_Jobs' is not allowed; expected a DNS-1123 label"),
    ({"namespace": "a" * 64}, "htcondor-pool:namespace: '" + "a" * 64 + "' is not allowed; expected a DNS-1123 label"),
    ({"name": "My.Pool"}, "htcondor-pool:name: 'My.Pool' is not allowed; expected a DNS-1123 label"),
    ({"name": "1pool"}, "htcondor-pool:name: '1pool' is not allowed; expected a DNS-1123 label of at most 39"),
    # NAME-worker's pods would share one hostname (cut to 63 characters), hence its slots.
    ({"name": "a" * 40}, "htcondor-pool:name: '" + "a" * 40 + "' is not allowed; expected a DNS-1123 label: at most 39"),
    ({"placement": '{"worker": {"nodeSelector": {"gpu type": "a100"}}}'},
     "htcondor-pool:placement.worker.nodeSelector.gpu type: 'gpu type' is not allowed; expected a label key"),
    ({"placement": '{"worker": {"nodeSelector": {"pool": "big mem"}}}'},
     "htcondor-pool:placement.worker.nodeSelector.pool: 'big mem' is not allowed; expected a label value"),
    ({"placement": '{"workers": {}}'},
     "htcondor-pool:placement.workers: {} is not allowed; expected a key among centralManager, schedd, worker"),
    ({"placement": '{"schedd": {"nodeselector": {}}}'},
     "htcondor-pool:placement.schedd.nodeselector: {} is not allowed; expected a key among nodeSelector, tolerations"),
    ({"placement": '{"worker": {"tolerations": [{"key": "gpu", "operator": "Equals"}]}}'},
     "htcondor-pool:placement.worker.tolerations[0].operator: 'Equals' is not allowed; expected one of Exists, Equal"),
    ({"placement": '{"worker": {"tolerations": [{"key": "gpu", "effect": "NoScheduling"}]}}'},
     "htcondor-pool:placement.worker.tolerations[0].effect: 'NoScheduling' is not allowed; expected one of "
     "NoSchedule, PreferNoSchedule, NoExecute"),
    ({"placement": '{"worker": {"tolerations": [{"operator": "Exists", "value": "x"}]}}'},
     "htcondor-pool:placement.worker.tolerations[0].value: 'x' is not allowed; expected no value with operator Exists"),
    ({"placement": '{"worker": {"tolerations": {"key": "gpu"}}}'},
     "htcondor-pool:placement.worker.tolerations: {'key': 'gpu'} is not allowed; expected a list of tolerations"),
    ({"placement": '{"worker": {"affinity": {"nodeAffinty": {}}}}'},
     "htcondor-pool:placement.worker.affinity.nodeAffinty: {} is not allowed; expected a key among nodeAffinity"),
    ({"placement": '{"centralManager": {"priorityClassName": "High_Priority"}}'},
     "htcondor-pool:placement.centralManager.priorityClassName: 'High_Priority' is not allowed; expected a DNS-1123 "
     "subdomain"),
    ({"workerPools": '{"Big_Mem": {"workers": 1}}'},
     "htcondor-pool:workerPools.Big_Mem: 'Big_Mem' is not allowed; expected a DNS-1123 label"),
    ({"workerPools": '{"default": {"workers": 1}}'},
     "htcondor-pool:workerPools.default: {'workers': 1} is not allowed; expected a pool name other than 'default'"),
    ({"workerPools": '{"gpu": {"gpus": -1}}'},
     "htcondor-pool:workerPools.gpu.gpus: -1 is not allowed; expected a whole number >= 0"),
    ({"workerPools": '{"gpu": {"workers": "many"}}'},
     "htcondor-pool:workerPools.gpu.workers: 'many' is not allowed; expected a whole number >= 0"),
    ({"workerPools": '{"gpu": {"gpu": 1}}'},
     "htcondor-pool:workerPools.gpu.gpu: 1 is not allowed; expected a key among workers, maxWorkers, idleShutdownSeconds, image, cpu, memory, "
     "disk, gpus, placement"),
    ({"workerPools": '{"scratch": {"disk": "10M"}}'},
     "htcondor-pool:workerPools.scratch.disk: '10M' is not allowed; expected a Kubernetes quantity of at least 268435456 bytes"),
    ({"resources": '{"worker": {"disk": "lots"}}'},
     "htcondor-pool:resources.worker.disk: 'lots' is not allowed; expected a Kubernetes quantity of at least 268435456 bytes"),
    ({"workerPools": '{"bigmem": {"memory": "64GB"}}'},
     "htcondor-pool:workerPools.bigmem.memory: '64GB' is not allowed; expected a Kubernetes quantity"),
    ({"workerPools": '{"bigmem": {"image": "htcondor/execute:latest"}}'},
     "htcondor-pool:workerPools.bigmem.image: 'htcondor/execute:latest' is not allowed; expected an image pinned"),
    ({"workerPools": '{"gpu": {"placement": {"nodeSelector": {"a/b/c": "x"}}}}'},
     "htcondor-pool:workerPools.gpu.placement.nodeSelector.a/b/c: 'a/b/c' is not allowed; expected a label key"),
    ({"workerPools": '["gpu"]'},
     "htcondor-pool:workerPools: ['gpu'] is not allowed; expected an object of worker pools by name"),
    # NAME-worker-POOL: its pods' hostnames must keep their random suffix.
    ({"name": "a" * 30, "workerPools": '{"large-memory": {}}'},
     "htcondor-pool:workerPools.large-memory: 'large-memory' is not allowed; expected a shorter name: the "
     "Deployment '" + "a" * 30 + "-worker-large-memory' would have 50 characters, and worker Deployments may "
     "have at most 46"),
    ({"createNamespace": "yes"}, "htcondor-pool:createNamespace: 'yes' is not allowed; expected true or false"),
    ({"resources": '{"worker": {"cpu": "2", "gpu": "1"}}'},
     "htcondor-pool:resources.worker.gpu: '1' is not allowed; expected a key among cpu, memory, disk"),
    ({"resources": '{"workers": {"cpu": "2"}}'},
     "htcondor-pool:resources.workers: {'cpu': '2'} is not allowed; expected a key among centralManager, schedd, worker"),
    ({"images": '{"submit": "htcondor/submit:25.0.15-el9"}'},
     "htcondor-pool:images.submit: 'htcondor/submit:25.0.15-el9' is not allowed; expected a key among centralManager, schedd, worker"),
    ({"resources": '{"worker": {"cpu": "two"}}'},
     "htcondor-pool:resources.worker.cpu: 'two' is not allowed; expected a Kubernetes quantity of at least 0.001 CPU"),
    ({"resources": '{"worker": {"memory": "2GB"}}'},
     "htcondor-pool:resources.worker.memory: '2GB' is not allowed; expected a Kubernetes quantity of at least 67108864 bytes"),
    ({"resources": '{"schedd": {"memory": "-1Gi"}}'},
     "htcondor-pool:resources.schedd.memory: '-1Gi' is not allowed; expected a Kubernetes quantity"),
    ({"images": '{"worker": "htcondor/execute"}'},
     "htcondor-pool:images.worker: 'htcondor/execute' is not allowed; expected an image pinned to a version tag or digest"),
    ({"images": '{"worker": "htcondor/execute:latest"}'},
     "htcondor-pool:images.worker: 'htcondor/execute:latest' is not allowed; expected an image pinned"),
    ({"images": "htcondor/execute:25.0.15-el9"},
     "htcondor-pool:images: 'htcondor/execute:25.0.15-el9' is not allowed; expected an object"),
    ({"poolName": "pool\nDAEMON_LIST = MASTER"}, "htcondor-pool:poolName: 'pool\\nDAEMON_LIST = MASTER' is not allowed"),
    ({"worker": "3"}, "htcondor-pool:worker: '3' is not allowed; expected a known key: one of name, namespace"),
]


@pytest.mark.parametrize("config,message", CASES, ids=[next(iter(c)) + ":" + str(next(iter(c.values())))[:20] for c, _ in CASES])
def test_bad_config_fails_before_anything_is_registered(config, message):
    with pytest.raises(PoolConfigError) as error:
        render(config)
    assert str(error.value).startswith(message)
    assert error.value.registered == []


@pytest.mark.parametrize("config", [
    {"workers": "0"}, {"workers": " 7 "}, {"createNamespace": "False", "namespace": "default"},
    {"resources": '{"worker": {"cpu": 4, "memory": "16Gi"}, "schedd": {"cpu": "250m"}}'},
    {"images": '{"worker": "registry.example.org:5000/site/execute@sha256:' + "a" * 64 + '"}'},
    {"name": "pool-a", "poolName": "CHTC test pool"},
    {"networkPolicy": "false"}, {"allowedCidrs": '["0.0.0.0/0"]'},
    {"scheddSpoolSize": "500Gi", "scheddStorageClass": "fast.ssd-1", "scheddSpoolAccessMode": "ReadWriteOnce"},
    {"name": "a" * 39},
    {"placement": '{"worker": {"nodeSelector": {"nvidia.com/gpu.present": true, "zone": ""}, '
                  '"tolerations": [{"operator": "Exists"}, {"key": "spot", "value": "true", "effect": "NoExecute", '
                  '"tolerationSeconds": 60}], "priorityClassName": "batch-low"}}'},
    {"workerPools": '{"gpu": {"workers": "2", "gpus": 1, "cpu": 4}, "bigmem": {}}'},
])
def test_good_config_is_accepted(config):
    assert render(config).resources


@pytest.mark.parametrize("text", ["7", " 7 "])
def test_a_worker_count_given_as_text_becomes_that_many_workers(text):
    rendered = render({"workers": text})
    (worker,) = [d.inputs for d in rendered.of_type("kubernetes:apps/v1:Deployment") if d.name == "htcondor-worker"]
    assert worker["spec"]["replicas"] == 7
    assert rendered.outputs["workers"] == 7


def test_library_callers_get_the_same_checks_naming_the_argument():
    with pytest.raises(PoolConfigError, match=r"^workers: -2 is not allowed"):
        HTCondorPoolArgs(workers=-2)
    with pytest.raises(PoolConfigError, match=r"^resources.worker.memory: '1 Gi' is not allowed"):
        HTCondorPoolArgs(resources={"worker": {"memory": "1 Gi"}})
    with pytest.raises(PoolConfigError, match=r"^worker_pools.gpu.gpus: -1 is not allowed"):
        HTCondorPoolArgs(worker_pools={"gpu": {"gpus": -1}})
    with pytest.raises(PoolConfigError, match=r"^allowed_cidrs: \['192.0.2.0/24'\] is not allowed; expected empty "
                                              r"while network_policy is false"):
        HTCondorPoolArgs(network_policy=False, allowed_cidrs=("192.0.2.0/24",))
