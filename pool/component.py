"""HTCondorPool: a working HTCondor pool on Kubernetes, as one Pulumi component; and the
table of contents of the pool. Each role is a child component with a module of its own
(pool/roles/), holding its objects; the pool itself holds only what every role shares,
its namespace and the ConfigMap of HTCondor's configuration and the pods' programs.

    HTCondorPool                     htcondor:index:Pool             NAME
    ├── Namespace, ConfigMap         (every role's)                  NAME-namespace, NAME-config
    ├── Credentials                  htcondor:index:Credentials      NAME-credentials
    ├── NetworkPolicies              htcondor:index:NetworkPolicies  NAME-network-policies   (networkPolicy)
    ├── CentralManager               htcondor:index:CentralManager   NAME-central-manager
    ├── Schedd                       htcondor:index:Schedd           NAME-schedd
    ├── WorkerPool, one per pool     htcondor:index:WorkerPool       NAME-worker, NAME-worker-POOL
    ├── Metrics                      htcondor:index:Metrics          NAME-metrics            (metrics)
    └── Autoscaler                   htcondor:index:Autoscaler       NAME-autoscaler         (maxWorkers)

docs/architecture.md shows what flows between them."""

import pulumi
import pulumi_kubernetes as k8s

from . import roles, security, validation
from .args import HTCondorPoolArgs
from .condor_config import snippet_files
from .roles.pods import SCRIPTS
from .roles.shared import config_map, namespace as namespace_manifest, pod_script
from .worker_pools import DEFAULT_POOL, WorkerPoolSpec, check_names, deployment_name


class HTCondorPool(pulumi.ComponentResource):
    """A pool password in a Secret (the pool's signing key, for the central manager only),
    an IDTOKEN minted from it for the schedd and one for the workers, each in a Secret, the
    generated HTCondor configuration in a ConfigMap, a central-manager Service, a
    NetworkPolicy, PersistentVolumeClaims for the schedd's queue and the central manager's
    accounting, and central-manager, schedd and worker Deployments; with `metrics`, the
    exporter's Deployment, Service, token, NetworkPolicy and Grafana dashboard; with
    `maxWorkers`, the autoscaler. The schedd and workers are created once the central
    manager is Available, i.e. its collector answers (the walkthrough's order)."""

    central_manager_address: pulumi.Output[str]
    namespace: pulumi.Output[str]
    workers: pulumi.Output[int]
    pool_password: pulumi.Output[str]
    submit_token: pulumi.Output[str]
    worker_token: pulumi.Output[str]
    service_name: pulumi.Output[str]
    central_manager_deployment_name: pulumi.Output[str]
    schedd_deployment_name: pulumi.Output[str]
    worker_deployment_name: pulumi.Output[str]
    worker_pool_deployment_names: pulumi.Output[dict]
    metrics_address: pulumi.Output[str | None]

    def __init__(self, name: str, args: HTCondorPoolArgs,
                 opts: pulumi.ResourceOptions | None = None):
        # Checked before registering anything: every object name derives from it.
        validation.component_name("name", name)
        check_names(name, args.worker_pools, "name", "worker_pools")
        super().__init__("htcondor:index:Pool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        pools = args.pools()
        # The exporter and the autoscaler run where the central manager does, of its image:
        # they are the pool's infrastructure.
        image, placement = args.images["centralManager"], args.placement["centralManager"]

        if args.create_namespace:
            ns = k8s.core.v1.Namespace(f"{name}-namespace", opts=child, **namespace_manifest(
                args.namespace, name, self._pod_security(name, args, pools)))
            namespace = ns.metadata.name  # an Output, so children wait for the namespace
        else:
            namespace = pulumi.Output.from_input(args.namespace)
        # The central manager's Service in cluster DNS: where daemons find the collector,
        # and the pool's UID_DOMAIN and TRUST_DOMAIN.
        trust_domain = roles.central_manager.host(name, args.namespace)

        credentials = roles.Credentials(f"{name}-credentials", roles.CredentialsArgs(
            instance=name, namespace=namespace, trust_domain=trust_domain, password_version=args.password_version,
            schedd_verifies_autoscaler=args.bursts), child)
        config = self._config(name, namespace, trust_domain, args)

        # Before any pod, so that no pod is ever reachable from outside the pool. Likewise
        # egress: nothing of a pod reaches beyond the pool, DNS and what stack config allows
        # (jobs: workerEgressCidrs) from its first packet.
        policies = roles.NetworkPolicies(f"{name}-network-policies", roles.NetworkPoliciesArgs(
            instance=name, namespace=namespace, allowed_cidrs=args.allowed_cidrs,
            worker_pools=[p.name for p in pools], worker_egress_cidrs=args.worker_egress_cidrs),
            child).policies if args.network_policy else []

        central_manager = roles.CentralManager(f"{name}-central-manager", roles.CentralManagerArgs(
            instance=name, namespace=namespace, spec=args.role("centralManager"),
            spool=roles.SpoolSpec(args.central_manager_spool_size, args.central_manager_storage_class,
                                  args.central_manager_spool_access_mode),
            config=config, credential=credentials.credentials["centralManager"], after=policies), child)
        schedd = roles.Schedd(f"{name}-schedd", roles.ScheddArgs(
            instance=name, namespace=namespace, spec=args.role("schedd"),
            spool=roles.SpoolSpec(args.schedd_spool_size, args.schedd_storage_class, args.schedd_spool_access_mode),
            config=config, credential=credentials.credentials["schedd"],
            central_manager=central_manager.deployment), child)
        # The default pool keeps the walkthrough's `workers` and Deployment `NAME-worker`;
        # each named pool is a Deployment of its own, so scaling one leaves the others be.
        worker_pools = {p.name: roles.WorkerPool(deployment_name(name, p.name), roles.WorkerPoolArgs(
            instance=name, namespace=namespace, pool=p, grace_period_seconds=args.worker_grace_period_seconds,
            unprivileged=args.unprivileged_workers, config=config, credential=credentials.credentials["worker"],
            central_manager=central_manager.deployment), child) for p in pools}

        self.metrics_address = pulumi.Output.from_input(None)
        if args.metrics:
            self.metrics_address = roles.Metrics(f"{name}-metrics", roles.MetricsArgs(
                instance=name, namespace=namespace, image=image, placement=placement, config=config,
                signing_key=credentials.signing_key, trust_domain=trust_domain,
                network_policy=args.network_policy, allowed_cidrs=args.metrics_allowed_cidrs,
                service_monitor=args.metrics_service_monitor, after=policies), child).address

        if args.bursts:
            roles.Autoscaler(f"{name}-autoscaler", roles.AutoscalerArgs(
                instance=name, namespace=namespace, namespace_name=args.namespace, image=image, placement=placement,
                config=config, signing_key=credentials.signing_key, trust_domain=trust_domain, pools=pools,
                worker_deployments={p.name: worker_pools[p.name].deployment for p in pools if p.bursts},
                unprivileged_workers=args.unprivileged_workers, network_policy=args.network_policy, after=policies,
                metrics=args.metrics, metrics_allowed_cidrs=args.metrics_allowed_cidrs,
                metrics_service_monitor=args.metrics_service_monitor), child)

        self.namespace = namespace
        self.central_manager_address = central_manager.address
        self.workers = pulumi.Output.from_input(args.workers)
        self.pool_password = credentials.signing_key
        # For hosts outside the cluster that join the pool (README: outside hosts).
        self.submit_token = credentials.submit_token
        self.worker_token = credentials.worker_token
        self.service_name = central_manager.service_name
        self.central_manager_deployment_name = central_manager.deployment_name
        self.schedd_deployment_name = schedd.deployment_name
        self.worker_deployment_name = worker_pools[DEFAULT_POOL].deployment_name
        self.worker_pool_deployment_names = pulumi.Output.all(
            **{pool: workers.deployment_name for pool, workers in worker_pools.items()})
        self.register_outputs({
            "central_manager_address": self.central_manager_address,
            "namespace": self.namespace,
            "workers": self.workers,
            "pool_password": self.pool_password,
            "submit_token": self.submit_token,
            "worker_token": self.worker_token,
            "service_name": self.service_name,
            "central_manager_deployment_name": self.central_manager_deployment_name,
            "schedd_deployment_name": self.schedd_deployment_name,
            "worker_deployment_name": self.worker_deployment_name,
            "worker_pool_deployment_names": self.worker_pool_deployment_names,
            "metrics_address": self.metrics_address,
        })

    @staticmethod
    def _pod_security(name: str, args: HTCondorPoolArgs, pools: list[WorkerPoolSpec]) -> str:
        """The strongest Pod Security Standard every pod of the pool meets, which its
        namespace enforces: of each role's pod, rendered with placeholder names."""
        image, placement = args.images["centralManager"], args.placement["centralManager"]
        pods = [roles.central_manager.pod(args.role("centralManager")), roles.schedd.pod(args.role("schedd")),
                *(roles.worker_pool.pod(p, args.worker_grace_period_seconds, args.unprivileged_workers)
                  for p in pools)]
        if args.metrics:
            pods.append(roles.metrics.metrics_pod_spec(image, placement))
        if args.bursts:
            pods.append(roles.autoscaler.pod(name, args.namespace, image, placement, pools, args.metrics))
        return security.weakest([security.pod_security_level(pod) for pod in pods])

    def _config(self, name: str, namespace, central_manager_host: str, args: HTCondorPoolArgs) -> roles.PoolConfig:
        """The ConfigMap every pod mounts part of, and its files."""
        files = config_files(args, central_manager_host)
        return roles.PoolConfig(k8s.core.v1.ConfigMap(f"{name}-config", opts=pulumi.ResourceOptions(parent=self),
                                                      **config_map(name, namespace, files)), files)


def config_files(args: HTCondorPoolArgs, central_manager_host: str) -> dict[str, str]:
    """The files of the pool's ConfigMap: HTCondor's configuration (shared and per role) and
    the daemons' scripts, and what the exporter and the autoscaler add (their
    configuration, their programs)."""
    files = snippet_files(central_manager_host, args.pool_name, uid_domain=central_manager_host,
                          job_retirement_seconds=args.job_retirement_seconds, intervals=args.intervals)
    files.update({script: pod_script(script) for script in SCRIPTS})
    if args.metrics:
        files.update(roles.metrics.config_files())
    if args.bursts:
        files.update(roles.autoscaler.config_files())
    return files
