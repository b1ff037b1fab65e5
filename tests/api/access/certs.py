"""mTLS material made at test time: a client CA and client certificates named by a URI SAN, a
DNS SAN or only their subject CN (the server side reuses tests/harness/pki)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.harness.pki import CertKey, make_ca, make_server_cert


def make_client_cert(
    directory: Path,
    ca: CertKey,
    stem: str,
    *,
    cn: str,
    uri: str | None = None,
    dns: str | None = None,
) -> CertKey:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    names: list[x509.GeneralName] = []
    if uri:
        names.append(x509.UniformResourceIdentifier(uri))
    if dns:
        names.append(x509.DNSName(dns))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return CertKey(cert, key, cert_file, key_file)


class Pki:
    """A server CA and certificate, and a client CA, under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.server_ca = make_ca(directory, "server CA", stem="server-ca")
        self.server = make_server_cert(directory, self.server_ca)
        self.client_ca = make_ca(directory, "client CA", stem="client-ca")

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.server.key_file.read_bytes(), self.server.cert_file.read_bytes())],
            root_certificates=self.client_ca.cert_file.read_bytes(),
            require_client_auth=True,
        )

    def client(
        self, stem: str, *, cn: str, uri: str | None = None, dns: str | None = None
    ) -> grpc.ChannelCredentials:
        cert = make_client_cert(self.directory, self.client_ca, stem, cn=cn, uri=uri, dns=dns)
        return grpc.ssl_channel_credentials(
            self.server_ca.cert_file.read_bytes(),
            cert.key_file.read_bytes(),
            cert.cert_file.read_bytes(),
        )
