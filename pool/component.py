"""HTCondorPool: a working HTCondor pool on Kubernetes, as one Pulumi component."""

import base64
import hashlib
import re
from importlib import resources as package_files

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from . import burst_admission, idtokens, manifests, security, validation
from .args import HTCondorPoolArgs, RoleSpec
from .condor_config import AUTOSCALER_SNIPPET, CONDOR_PORT, METRICS_SNIPPET, autoscaler_config, metrics_config, snippet_files
from .credentials import (
    AUTOSCALER_TOKEN_HOLDER, METRICS_TOKEN_HOLDER, SCHEDD_KEY_ID, SIGNING_KEY_ROLES, TOKEN_HOLDERS, schedd_key,
)
from .defaults import METRICS_PORT
from .password import password_file_base64
from .worker_pools import DEFAULT_POOL, WorkerPoolSpec, check_names

PASSWORD_LENGTH = 40


def pod_script(name: str) -> str:
    """One of the programs pods run (pool/files), shipped in the ConfigMap."""
    return package_files.files(__package__).joinpath(f"files/{name}").read_text()


def dashboard() -> str:
    """The Grafana dashboard of the pool's metrics (pool/grafana)."""
    return package_files.files(__package__).joinpath(f"grafana/{manifests.DASHBOARD_KEY}").read_text()


def _arguments(manifest: dict) -> dict:
    """A manifest's top-level fields as a pulumi-kubernetes resource takes them (snake_case:
    `roleRef` is `role_ref`); what is inside them stays camelCase, as the API has it."""
    return {re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower(): value for key, value in manifest.items()}


def _base64(token: pulumi.Output[str]) -> pulumi.Output[str]:
    """A token as a Secret's `data` holds it (still secret: apply keeps secretness)."""
    return token.apply(lambda t: base64.b64encode(t.encode()).decode())


def _service_monitor(name: str, namespace, component: str, service, parent) -> None:
    """The Prometheus Operator's ServiceMonitor for a scraped component's Service."""
    monitor = manifests.service_monitor(name, namespace, component)
    k8s.apiextensions.CustomResource(
        f"{name}-{component}-monitor", opts=pulumi.ResourceOptions(parent=parent, depends_on=[service]),
        api_version=monitor["apiVersion"], kind=monitor["kind"], metadata=monitor["metadata"], spec=monitor["spec"])


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class HTCondorPool(pulumi.ComponentResource):
    """A pool password in a Secret (the pool's signing key, for the central manager only),
    an IDTOKEN minted from it for the schedd and one for the workers, each in a Secret, the
    generated HTCondor configuration in a ConfigMap, a central-manager Service, a
    NetworkPolicy, PersistentVolumeClaims for the schedd's queue and the central manager's
    accounting, and central-manager, schedd and worker Deployments; with `metrics`, the
    exporter's Deployment, Service, token, NetworkPolicy and Grafana dashboard. The schedd and workers
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
    metrics_address: pulumi.Output[str | None]

    def __init__(self, name: str, args: HTCondorPoolArgs,
                 opts: pulumi.ResourceOptions | None = None):
        # Checked before registering anything: every object name derives from it.
        validation.component_name("name", name)
        check_names(name, args.worker_pools, "name", "worker_pools")
        super().__init__("htcondor:index:Pool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def pod(role: str, config_map_name="config", credential_secret="credential", spool_claim=None,
                pool: WorkerPoolSpec | None = None) -> dict:
            spec = args.role(role) if pool is None else RoleSpec(pool.image, pool.cpu, pool.memory, pool.placement,
                                                                 pool.gpus, pool.disk)
            return manifests.pod_spec(role, spec, config_map_name, credential_secret,
                                      args.worker_grace_period_seconds, spool_claim=spool_claim,
                                      unprivileged_workers=args.unprivileged_workers,
                                      pool=DEFAULT_POOL if pool is None else pool.name)

        def metrics_pod(config_map_name="config", credential_secret="credential") -> dict:
            # The central manager's image and placement: the pool's infrastructure.
            return manifests.metrics_pod_spec(args.images["centralManager"], args.placement["centralManager"],
                                              config_map_name, credential_secret)

        def autoscaler_pod(config_map_name="config", credential_secret="credential", account="autoscaler") -> dict:
            # Also the central manager's image and placement: the pool's infrastructure.
            return manifests.autoscaler_pod_spec(args.images["centralManager"], args.placement["centralManager"],
                                                 config_map_name, credential_secret, account, name,
                                                 manifests.burst_shapes(name, args.pools()),
                                                 burst_admission.policy_name(name, args.namespace), args.metrics)

        if args.create_namespace:
            # Pod Security Admission enforces the strongest standard all the pool's pods meet.
            enforce = security.weakest(
                [security.pod_security_level(pod(role, spool_claim="spool" if role in manifests.SPOOL_ROLES else None))
                 for role in manifests.COMPONENTS] +
                [security.pod_security_level(pod("worker", pool=p)) for p in args.pools()] +
                ([security.pod_security_level(metrics_pod())] if args.metrics else []) +
                ([security.pod_security_level(autoscaler_pod())] if args.bursts else []))
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
        # With burst workers, the schedd verifies the autoscaler's token with a key of its own.
        verify_keys = {role: {} for role in tokens}
        if args.bursts:
            verify_keys["schedd"] = {SCHEDD_KEY_ID: pulumi.Output.secret(password.result.apply(
                lambda key: password_file_base64(schedd_key(key))))}
        token_secrets = {role: k8s.core.v1.Secret(
            manifests.token_secret_name(name, role), opts=child, **manifests.token_secret(
                name, role, namespace, _base64(token),
                verify_keys[role]))
            for role, token in tokens.items()}
        files = snippet_files(central_manager_host, args.pool_name, uid_domain=central_manager_host,
                              job_retirement_seconds=args.job_retirement_seconds, intervals=args.intervals)
        for script in manifests.SCRIPTS:
            files[script] = pod_script(script)
        if args.metrics:
            files[METRICS_SNIPPET] = metrics_config()
            files[manifests.EXPORTER] = pod_script(manifests.EXPORTER)
        if args.bursts:
            files[AUTOSCALER_SNIPPET] = autoscaler_config()
            files[manifests.AUTOSCALER] = pod_script(manifests.AUTOSCALER)
        if args.metrics or args.bursts:
            for module in (manifests.POD_TOKEN, manifests.PROMETHEUS_TEXT):
                files[module] = pod_script(module)
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
        credential_checksums = {role: pulumi.Output.unsecret(pulumi.Output.all(tokens[role], *verify_keys[role].values())
                                                             .apply(lambda parts: _sha256("".join(parts))))
                                for role in tokens}
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

        def deployment(role: str, replicas: int, depends_on: list, pool: WorkerPoolSpec | None = None,
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

        self.metrics_address = pulumi.Output.from_input(None)
        if args.metrics:
            # Its own token, READ scope only: it reads the collector and can do nothing else.
            metrics_token = pulumi.Output.secret(password.result.apply(
                lambda key: idtokens.mint(key, trust_domain, METRICS_TOKEN_HOLDER.subject(trust_domain),
                                          METRICS_TOKEN_HOLDER.scopes)))
            metrics_secret = k8s.core.v1.Secret(
                f"{name}-metrics-token", opts=child, **manifests.metrics_token_secret(
                    name, namespace, _base64(metrics_token)))
            metrics_policy = [k8s.networking.v1.NetworkPolicy(
                f"{name}-metrics-ingress", opts=child,
                **manifests.metrics_network_policy(name, namespace, args.metrics_allowed_cidrs))] \
                if args.network_policy else []
            mounted = "".join(files[key] for key in manifests.metrics_config_keys())
            k8s.apps.v1.Deployment(
                f"{name}-metrics", opts=pulumi.ResourceOptions(parent=self, depends_on=[
                    config, metrics_secret, *policy, *metrics_policy]),
                **manifests.metrics_deployment(
                    name, namespace, metrics_pod(config.metadata.name, metrics_secret.metadata.name),
                    {manifests.CHECKSUM_CONFIG: _sha256(mounted),
                     manifests.CHECKSUM_CREDENTIAL: pulumi.Output.unsecret(metrics_token.apply(_sha256))}))
            metrics_service = k8s.core.v1.Service(f"{name}-metrics", opts=child,
                                                  **manifests.metrics_service(name, namespace))
            k8s.core.v1.ConfigMap(f"{name}-dashboard", opts=child,
                                  **manifests.dashboard_config_map(name, namespace, dashboard()))
            if args.metrics_service_monitor:
                _service_monitor(name, namespace, manifests.METRICS_COMPONENT, metrics_service, self)
            self.metrics_address = pulumi.Output.concat(
                metrics_service.metadata.name, ".", namespace, f".svc.cluster.local:{METRICS_PORT}")

        if args.bursts:
            self._autoscaler(name, namespace, password, trust_domain, config, files, policy,
                             {p.name: pools[p.name] for p in args.pools() if p.bursts}, autoscaler_pod, args)

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
            "metrics_address": self.metrics_address,
        })

    def _autoscaler(self, name: str, namespace, password, trust_domain: str, config, files: dict, policy: list,
                    worker_deployments: dict, autoscaler_pod, args: HTCondorPoolArgs) -> None:
        """Burst workers (stack config `maxWorkers`): the autoscaler's Deployment, with its
        own READ-only HTCondor token, a ServiceAccount whose Role lets it do only what it
        does, and (with `networkPolicy`) its way to the API server. Created after the worker
        Deployments, whose pod template it reads; destroyed before them, so that no burst
        worker is created while `pulumi destroy` deletes them (and, through their owner
        reference, their burst workers)."""
        child = pulumi.ResourceOptions(parent=self)
        subject, scopes = AUTOSCALER_TOKEN_HOLDER.subject(trust_domain), AUTOSCALER_TOKEN_HOLDER.scopes
        token = pulumi.Output.secret(password.result.apply(
            lambda key: idtokens.mint(key, trust_domain, subject, scopes)))
        schedd_token = pulumi.Output.secret(password.result.apply(
            lambda key: idtokens.mint(schedd_key(key), trust_domain, subject, scopes, key_id=SCHEDD_KEY_ID)))
        secret = k8s.core.v1.Secret(f"{name}-autoscaler-token", opts=child, **manifests.autoscaler_token_secret(
            name, namespace, _base64(token),
            _base64(schedd_token)))
        account = k8s.core.v1.ServiceAccount(f"{name}-autoscaler", opts=child,
                                             **_arguments(manifests.autoscaler_service_account(name, namespace)))
        role = k8s.rbac.v1.Role(f"{name}-autoscaler", opts=child, **manifests.autoscaler_role(
            name, namespace, [manifests.deployment_name(name, p) for p in worker_deployments]))
        # What its Jobs may be (burst workers, nothing else), in force before its Role is
        # bound: the Role alone would let it mount any Secret of the namespace in a Job.
        labels = manifests.client_labels(name, manifests.AUTOSCALER_COMPONENT)
        admission = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            f"{name}-autoscaler", opts=child, **_arguments(burst_admission.policy(
                name, args.namespace, {p.name: p.image for p in args.pools() if p.bursts},
                manifests.config_map_name(name), manifests.token_secret_name(name, "worker"),
                args.unprivileged_workers, labels)))
        admission_binding = k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            f"{name}-autoscaler", opts=pulumi.ResourceOptions(parent=self), **_arguments(burst_admission.binding(
                name, args.namespace, admission.metadata.name, labels)))
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-autoscaler", opts=pulumi.ResourceOptions(parent=self, depends_on=[admission_binding]),
            **_arguments(manifests.autoscaler_role_binding(name, namespace, role.metadata.name,
                                                           account.metadata.name)))
        egress = [k8s.networking.v1.NetworkPolicy(f"{name}-autoscaler-egress", opts=child,
                                                  **manifests.autoscaler_egress_policy(name, namespace))] \
            if policy else []
        if args.metrics:
            # Its decisions, scraped as the exporter is (Service annotations, ServiceMonitor).
            if policy:
                egress.append(k8s.networking.v1.NetworkPolicy(
                    f"{name}-autoscaler-ingress", opts=child, **manifests.metrics_network_policy(
                        name, namespace, args.metrics_allowed_cidrs, manifests.AUTOSCALER_COMPONENT)))
            service = k8s.core.v1.Service(f"{name}-autoscaler", opts=child, **manifests.metrics_service(
                name, namespace, manifests.AUTOSCALER_COMPONENT))
            if args.metrics_service_monitor:
                _service_monitor(name, namespace, manifests.AUTOSCALER_COMPONENT, service, self)
        mounted = "".join(files[key] for key in manifests.autoscaler_config_keys())
        k8s.apps.v1.Deployment(
            manifests.autoscaler_name(name), opts=pulumi.ResourceOptions(parent=self, depends_on=[
                config, secret, binding, *policy, *egress, *worker_deployments.values()]),
            **manifests.autoscaler_deployment(
                name, namespace, autoscaler_pod(config.metadata.name, secret.metadata.name, account.metadata.name),
                {manifests.CHECKSUM_CONFIG: _sha256(mounted),
                 manifests.CHECKSUM_CREDENTIAL: pulumi.Output.unsecret(
                     pulumi.Output.all(token, schedd_token).apply(lambda parts: _sha256("".join(parts))))}))
