"""``pomelo-twisted certs``: the cluster CA and a certificate per server, master and admin.

A self-signed CA (its key stays in ``<dir>/ca.key``), then for every server id of
servers.json, the master's id and ``admin`` a key and a certificate signed by the CA,
naming the id as its common name and subject alternative DNS name (what clients check,
see :mod:`pomelo_twisted.tlsconfig`), good for both ends of a link (server and client
auth). Keys are P-256, written 0600. Idempotent: an existing CA is reused and only
missing certificates are made; ``force`` makes everything anew (old certificates stop
working).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import ConfigError
from ..gameconfig import GameConfig
from ..rpc.pbauth import ADMIN
from ..tlsconfig import CertPaths, check_identity

__all__ = ["DEFAULT_DAYS", "create_certs", "identities", "write_certs"]

#: How long certificates are valid, by default (the CA: twice as long).
DEFAULT_DAYS = 825
_CA_NAME = "pomelo_twisted cluster CA"


def identities(config: GameConfig, extra: Sequence[str] = ()) -> list[str]:
    """Who needs a certificate: every server id, the master's id, ``admin``, and the
    ``extra`` ids (servers to be added later with ``pomelo-twisted add``)."""
    ids = [info.id for infos in config.servers().values() for info in infos]
    names = [*ids, config.master_settings().id, ADMIN]
    names += [name for name in extra if name not in names]
    return [check_identity(name) for name in names]


def create_certs(
    config: GameConfig,
    *,
    force: bool = False,
    days: int = DEFAULT_DAYS,
    extra: Sequence[str] = (),
) -> tuple[Path, list[str]]:
    """Make the CA and the missing certificates in the game's certificates folder
    (master.json's ``tls.dir``, else ``certs``): the folder and the names made."""
    root = config.tls_dir() or config.base_dir / "certs"
    paths = CertPaths(root)
    names = identities(config, extra)  # every id checked before anything is written
    paths.ca_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    made: list[str] = []
    if force or not (paths.ca_cert.is_file() and paths.ca_key.is_file()):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key, now, days * 2)
        _write_key(paths.ca_key, ca_key)
        paths.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        made.append("ca")
        force = True  # certificates of an older CA no longer verify
    else:
        ca_cert, ca_key = _load_ca(paths)
    for identity in names:
        if not force and paths.cert(identity).is_file() and paths.key(identity).is_file():
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _leaf_certificate(identity, key, ca_cert, ca_key, now, days)
        _write_key(paths.key(identity), key)
        paths.cert(identity).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        made.append(identity)
    return root, made


def write_certs(
    config: GameConfig, out: TextIO, *, force: bool = False, extra: Sequence[str] = ()
) -> int:
    """``pomelo-twisted certs [ID ...]``: make what is missing, say what was made (exit 0)."""
    root, made = create_certs(config, force=force, extra=extra)
    out.write(
        f"certificates in {root}: {'created ' + ', '.join(made) if made else 'all present'}\n"
    )
    if config.tls_dir() is None:
        out.write(
            f"TLS is off in {config.where('master')}: add "
            f'"tls": {{"dir": "{os.path.relpath(root, config.base_dir)}"}} to turn it on\n'
        )
    return 0


def _load_ca(paths: CertPaths) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The existing CA; ConfigError when its files cannot be read."""
    try:
        cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"cannot read the CA in {paths.root}: {exc} (--force makes a new one)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{paths.ca_key} is not an EC key (--force makes a new CA)")
    return cert, key


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write ``key`` as unencrypted PKCS#8 PEM, readable by its owner only."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def _ca_certificate(
    key: ec.EllipticCurvePrivateKey, now: datetime.datetime, days: int
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _CA_NAME)])
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf_certificate(
    identity: str,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
    days: int,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(identity)]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
