"""A throwaway certificate authority for tests that need TLS with client certificates.

Made with ``cryptography`` in a temp dir: a CA, a server certificate for
127.0.0.1, and a client certificate and key, all signed by the CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pki:
    """PEM texts of the CA, and server and client pairs, plus the server's files."""

    ca_pem: str
    client_cert_pem: str
    client_key_pem: str
    server_cert_file: Path
    server_key_file: Path
    ca_file: Path

    def server_context(self) -> ssl.SSLContext:
        """A server context that refuses any client without a certificate from the CA."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert_file, self.server_key_file)
        context.load_verify_locations(self.ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
        return context


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _signed(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    """A CA with one server (127.0.0.1) and one client certificate, under ``directory``."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    ca = _signed("test-ca", ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _signed("127.0.0.1", server_key, ca_name, ca_key, server=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _signed("flowplane-runner", client_key, ca_name, ca_key)
    pem = serialization.Encoding.PEM
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca.public_bytes(pem))
    server_cert_file = directory / "server.crt"
    server_cert_file.write_bytes(server.public_bytes(pem))
    server_key_file = directory / "server.key"
    server_key_file.write_bytes(_pem_key(server_key))
    return Pki(
        ca_pem=ca.public_bytes(pem).decode(),
        client_cert_pem=client.public_bytes(pem).decode(),
        client_key_pem=_pem_key(client_key).decode(),
        server_cert_file=server_cert_file,
        server_key_file=server_key_file,
        ca_file=ca_file,
    )
