"""The cluster's credentials, as kubeadm and hack/local-up-cluster.sh make them: one CA,
serving certificates for the API server and the kubelet, a client certificate and a
kubeconfig per component (each its own identity, which RBAC and the Node authorizer then
limit), and the service-account signing key pair."""

import datetime
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=7)  # a test cluster lives for minutes


@dataclass(frozen=True)
class Identity:
    """A certificate to issue: client certificates name a user (CN) and groups (O)."""
    name: str  # file stem: NAME.crt, NAME.key, NAME.kubeconfig
    common_name: str
    groups: tuple[str, ...] = ()
    server_names: tuple[str, ...] = ()  # DNS names and IPs it serves; empty: a client
    client: bool = True


@dataclass
class Pki:
    directory: Path
    identities: dict[str, Identity] = field(default_factory=dict)

    def path(self, name: str, suffix: str) -> Path:
        return self.directory / f"{name}.{suffix}"

    @property
    def ca_cert(self) -> Path:
        return self.path("ca", "crt")

    def kubeconfig(self, name: str) -> Path:
        return self.path(name, "kubeconfig")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _name(common_name: str, groups: tuple[str, ...] = ()) -> x509.Name:
    return x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    entries = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def create(directory: Path, identities: list[Identity], api_server_url: str) -> Pki:
    """Issue every identity's certificate from a new CA, and a kubeconfig for each client
    that talks to the API server at `api_server_url`."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory, {i.name: i for i in identities})
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    ca_key = _key()
    ca_name = _name("htcondor-pool test cluster CA")
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + VALIDITY)
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.path("ca", "key"), ca_key)

    for identity in identities:
        key = _key()
        usages = ([ExtendedKeyUsageOID.CLIENT_AUTH] if identity.client else []) + \
                 ([ExtendedKeyUsageOID.SERVER_AUTH] if identity.server_names else [])
        builder = (x509.CertificateBuilder().subject_name(_name(identity.common_name, identity.groups))
                   .issuer_name(ca_name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + VALIDITY)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
                   # Key identifiers, as Go's crypto/x509 (kubeadm, the API server's own)
                   # writes them: OpenSSL 3's strict verification (Python 3.13's default,
                   # the autoscaler's client) refuses a certificate without them.
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if identity.server_names:
            builder = builder.add_extension(_san(identity.server_names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        pki.path(identity.name, "crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(pki.path(identity.name, "key"), key)
        if identity.client:
            write_kubeconfig(pki.kubeconfig(identity.name), api_server_url, pki.ca_cert,
                             pki.path(identity.name, "crt"), pki.path(identity.name, "key"),
                             identity.common_name)

    service_accounts = _key()
    _write_key(pki.path("service-accounts", "key"), service_accounts)
    pki.path("service-accounts", "pub").write_bytes(service_accounts.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return pki


def write_kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path, user: str) -> None:
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "htcondor-pool-test", "cluster": {
            "server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "htcondor-pool-test", "context": {"cluster": "htcondor-pool-test", "user": user}}],
        "current-context": "htcondor-pool-test",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
