# SPDX-License-Identifier: MIT
"""Shared fixtures: kernel backends for differential tests."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import wsfast
from wsfast import _reference

from .optional import require

# No per-example deadline: on a busy 2-core CI box one slow example is load, not a
# bug, and Hypothesis would report it as a failure (then replay it as "flaky").
settings.register_profile("wsfast", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("wsfast")

MASK_BACKENDS: dict[str, Callable[..., bytes]] = {
    "reference": _reference.apply_mask,
    "rust": wsfast.apply_mask,
}


@pytest.fixture(params=sorted(MASK_BACKENDS))
def mask_impl(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Each implementation of apply_mask(data, mask, offset)."""
    return MASK_BACKENDS[request.param]


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made at test time."""
    x509 = require("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wsfast test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
