# SPDX-License-Identifier: MIT
"""Self-signed certificates made at test time (the TLS tests share one recipe)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from .optional import require


def self_signed_certificate(
    directory: Path,
    *,
    common_name: str,
    not_before: datetime.timedelta,
    not_after: datetime.timedelta,
    dns_names: tuple[str, ...] = (),
    stem: str = "cert",
) -> tuple[Path, Path]:
    """Write a self-signed CA certificate for 127.0.0.1 and its key as PEM files.

    Args:
        directory: where to write ``{stem}.pem`` and ``{stem}-key.pem``.
        common_name: the subject's (and issuer's) common name.
        not_before: start of validity, relative to now (negative is in the past).
        not_after: end of validity, relative to now (negative makes it expired).
        dns_names: host names added to 127.0.0.1 in the subject alternative names.
        stem: the file names' stem.

    Returns:
        The certificate's path and the private key's path.
    """
    x509 = require("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    alt_names = [x509.DNSName(host) for host in dns_names]
    alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + not_before)
        .not_valid_after(now + not_after)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
