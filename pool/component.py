"""HTCondorPool: a working HTCondor pool on Kubernetes, as one Pulumi component."""

import base64
import hashlib
from importlib import resources as package_files

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from . import idtokens, manifests, security, validation
from .args import HTCondorPoolArgs, RoleSpec
from .condor_config import CONDOR_PORT, snippet_files
from .credentials import SIGNING_KEY_ROLES, TOKEN_HOLDERS
from .password import password_file_base64
from .worker_pools import DEFAULT_POOL, WorkerPool, check_names

PASSWORD_LENGTH = 40


def pod_script(name: str) -> str:
    """One of the shell scripts pods run (pool/files), shipped in the ConfigMap."""
    return package_files.files(__package__).joinpath(f"files/{name}").read_text()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class HTCondorPool(pulumi.ComponentResource):
    """A pool password in a Secret (the pool's signing key, for the central manager only),
    an IDTOKEN minted from it for the schedd and one for the workers, each in a Secret, the
    generated HTCondor configuration in a ConfigMap, a central-manager Service, a
    NetworkPolicy, PersistentVolumeClaims for the schedd's queue and the central manager's
    accounting, and central-manager, schedd and worker Deployments. The schedd and workers
    are created once the central manager is Available, i.e. its collector answers (the
    walkthrough's order)."""

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

    def __init__(self, name: str, args: HTCondorPoolArgs,
                 opts: pulumi.ResourceOptions | None = None):
        # Checked before registering anything: every object name derives from it.
        validation.component_name("name", name)
        check_names(name, args.worker_pools, "name", "worker_pools")
        super().__init__("htcondor:index:Pool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def pod(role: str, config_map_name="config", credential_secret="credential", spool_claim=None,
                pool: WorkerPool | None = None) -> dict:
            spec = args.role(role) if pool is None else RoleSpec(pool.image, pool.cpu, pool.memory, pool.placement,
                                                                 pool.gpus, pool.disk)
            return manifests.pod_spec(role, spec, config_map_name, credential_secret,
                                      args.worker_grace_period_seconds, spool_claim=spool_claim,
                                      unprivileged_workers=args.unprivileged_workers,
                                      pool=DEFAULT_POOL if pool is None else pool.name)

        if args.create_namespace:
            # Pod Security Admission enforces the strongest standard all the pool's pods meet.
            enforce = security.weakest(
                [security.pod_security_level(pod(role, spool_claim="spool" if role in manifests.SPOOL_ROLES else None))
                 for role in manifests.COMPONENTS] +
                [security.pod_security_level(pod("worker", pool=p)) for p in args.pools()])
            ns = k8s.core.v1.Namespace(f"{name}-namespace", opts=child,
                                       **manifests.namespace(args.namespace, name, enforce))
            namespace = ns.metadata.name  # an Output, so children wait for the namespace
        else:
            namespace = pulumi.Output.from_input(args.namespace)

        # A new passwordVersion replaces the RandomPassword, hence the Secret and, through
        # the password checksum, every pod.
        password = random.RandomPassword(f"{name}-pool-password", length=PASSWORD_LENGTH,
                                         special=False, keepers={"passwordVersion": args.password_version},
                                         opts=child)
        secret = k8s.core.v1.Secret(f"{name}-pool-password", opts=child, **manifests.password_secret(
            name, namespace, pulumi.Output.secret(password.result.apply(password_file_base64))))

        service_name = manifests.object_name(name, "centralManager")
        central_manager_host = f"{service_name}.{args.namespace}.svc.cluster.local"
        trust_domain = central_manager_host  # UID_DOMAIN and TRUST_DOMAIN (pool_config)

        # Each token-holding role's IDTOKEN, minted from the key: the same key always gives
        # the same token, a new one (passwordVersion) a new token.
        tokens = {role: pulumi.Output.secret(password.result.apply(
                      lambda key, holder=holder: idtokens.mint(key, trust_domain, holder.subject(trust_domain),
                                                               holder.scopes)))
                  for role, holder in TOKEN_HOLDERS.items()}
        token_secrets = {role: k8s.core.v1.Secret(
            manifests.token_secret_name(name, role), opts=child, **manifests.token_secret(
                name, role, namespace, token.apply(lambda t: base64.b64encode(t.encode()).decode())))
            for role, token in tokens.items()}
        files = snippet_files(central_manager_host, args.pool_name, uid_domain=central_manager_host,
                              job_retirement_seconds=args.job_retirement_seconds, intervals=args.intervals)
        for script in manifests.SCRIPTS:
            files[script] = pod_script(script)
        config = k8s.core.v1.ConfigMap(f"{name}-config", opts=child,
                                       **manifests.config_map(name, namespace, files))
        service = k8s.core.v1.Service(f"{name}-central-manager", opts=child,
                                      **manifests.central_manager_service(name, namespace))
        # Before any pod, so that no pod is ever reachable from outside the pool.
        # Likewise egress: nothing of a pod reaches beyond the pool, DNS and what stack config
        # allows (jobs: workerEgressCidrs) from its first packet.
        policy = [
            k8s.networking.v1.NetworkPolicy(f"{name}-ingress", opts=child,
                                            **manifests.network_policy(name, namespace, args.allowed_cidrs)),
            k8s.networking.v1.NetworkPolicy(f"{name}-egress", opts=child,
                                            **manifests.egress_policy(name, namespace)),
            k8s.networking.v1.NetworkPolicy(f"{name}-worker-egress", opts=child, **manifests.worker_egress_policy(
                name, namespace, [p.name for p in args.pools()], args.worker_egress_cidrs)),
        ] if args.network_policy else []

        # A hash of a 240-bit random password, or of a token signed with a key derived from
        # it, reveals nothing, and as a plain value it keeps the Deployments' specs readable
        # in previews.
        credential_checksums = {role: pulumi.Output.unsecret(tokens[role].apply(_sha256)) for role in tokens}
        credential_checksums.update({role: pulumi.Output.unsecret(password.result.apply(_sha256))
                                     for role in SIGNING_KEY_ROLES})
        credential_secrets = {role: token_secrets[role] for role in token_secrets}
        credential_secrets.update({role: secret for role in SIGNING_KEY_ROLES})

        spool = k8s.core.v1.PersistentVolumeClaim(
            manifests.spool_claim_name(name, "schedd"), opts=child, **manifests.spool_claim(
                name, "schedd", namespace, args.schedd_spool_size, args.schedd_storage_class,
                args.schedd_spool_access_mode))
        central_manager_spool = k8s.core.v1.PersistentVolumeClaim(
            manifests.spool_claim_name(name, "centralManager"), opts=child, **manifests.spool_claim(
                name, "centralManager", namespace, args.central_manager_spool_size,
                args.central_manager_storage_class, args.central_manager_spool_access_mode))

        def deployment(role: str, replicas: int, depends_on: list, pool: WorkerPool | None = None,
                       **extra) -> k8s.apps.v1.Deployment:
            mounted = "".join(files[key] for key in manifests.role_config_keys(role, pool.gpus if pool else 0))
            checksums = {manifests.CHECKSUM_CONFIG: _sha256(mounted),
                         manifests.CHECKSUM_CREDENTIAL: credential_checksums[role]}
            credential = credential_secrets[role]
            manifest = manifests.deployment(
                name, namespace, role, pod(role, config.metadata.name, credential.metadata.name, pool=pool, **extra),
                replicas, checksums, pool=DEFAULT_POOL if pool is None else pool.name)
            return k8s.apps.v1.Deployment(
                manifest["metadata"]["name"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[config, credential, *depends_on]),
                **manifest)

        # Not after the Service: its central-manager pods report to their own collector, not
        # through the Service, and pulumi-kubernetes holds a Service with a selector until its
        # endpoints have been still for 10 s, which would put 10 s before every pod. The
        # Service is created beside the central manager, long before the schedd and workers
        # that reach the central manager through it start (once it is available).
        central_manager = deployment("centralManager", 1, [*policy, central_manager_spool],
                                     spool_claim=central_manager_spool.metadata.name)
        schedd = deployment("schedd", 1, [central_manager, spool], spool_claim=spool.metadata.name)
        # The default pool keeps the walkthrough's `workers` and Deployment `NAME-worker`;
        # each named pool is a Deployment of its own, so scaling one leaves the others be.
        pools = {p.name: deployment("worker", p.workers, [central_manager], pool=p) for p in args.pools()}
        worker = pools[DEFAULT_POOL]

        self.namespace = namespace
        self.central_manager_address = pulumi.Output.concat(
            service.metadata.name, ".", namespace, f".svc.cluster.local:{CONDOR_PORT}")
        self.workers = pulumi.Output.from_input(args.workers)
        self.pool_password = pulumi.Output.secret(password.result)
        # For hosts outside the cluster that join the pool (README: outside hosts).
        self.submit_token = tokens["schedd"]
        self.worker_token = tokens["worker"]
        self.service_name = service.metadata.name
        self.central_manager_deployment_name = central_manager.metadata.name
        self.schedd_deployment_name = schedd.metadata.name
        self.worker_deployment_name = worker.metadata.name
        self.worker_pool_deployment_names = pulumi.Output.all(
            **{pool: d.metadata.name for pool, d in pools.items()})
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
        })
