"""The inter-server link over TLS with mutual authentication (a cluster CA).

When ``config/master.json`` declares ``"tls": {"dir": "certs"}`` for an environment,
every PB link of the cluster (peers' RPC links, each server's link to the master, the
admin CLI's) is TLS in both directions:

* a **listener** (a server's RPC port, the master's port) presents its own certificate
  and *requires* a client certificate signed by the cluster CA: a plaintext peer, or one
  with a certificate of another CA, fails the handshake and never reaches PB;
* a **client** presents its own certificate and checks the server's against the CA and
  against the *id* of the server it means to reach (each certificate names its server id
  as its subject alternative DNS name; the id, not the host, because many servers share
  one host and an IP address says nothing about which of them answers).

The PB secret login stays on top: a stolen certificate alone logs in as nothing; and over
TLS a login name must be the id the client's certificate names
(:class:`~pomelo_twisted.rpc.pbauth.ClusterSecretChecker`), so a server's key and the
cluster secret log in as that server only, and ``admin`` needs the admin certificate.

The files, made by ``pomelo-twisted certs`` (:mod:`pomelo_twisted.cluster.certs`), under
the ``dir`` of master.json (relative to the game folder):

* ``ca/ca.pem``: the CA certificate, alone in its folder (the folder is the trust root of
  the client endpoints, Twisted's ``caCertsDir``); ``ca.key``: its key (only ``certs``
  reads it: keep it off the servers if you like);
* ``<id>.pem`` and ``<id>.key`` for every server id, the master's id and ``admin``.

Clients are ``ssl:`` endpoint strings (``clientFromString``), so the monitor, the RPC
transport and the admin CLI connect as before; listeners wrap the TCP endpoint of the
string in :class:`TLSServerEndpoint`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography import x509
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import quoteStringArgument, serverFromString
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.internet.ssl import Certificate, CertificateOptions, PrivateCertificate
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from .errors import ConfigError
from .gameconfig import GameConfig
from .interfaces import IServerReactor

__all__ = ["ClusterTLS", "TLSServerEndpoint", "check_identity", "cluster_tls", "peer_names"]

#: What a server id of a TLS cluster may be: one DNS label (the certificate's DNS name,
#: matched by Twisted's IDNA-checking client): letters, digits and inner hyphens, not two
#: hyphens at the 3rd and 4th place (the IDNA ``xn--`` form), 63 characters at most.
_LABEL = re.compile(r"(?!-)(?!..--)[A-Za-z0-9-]{1,63}(?<!-)")

#: Where the CA certificate lives, relative to the certificates folder.
CA_DIR = "ca"
CA_CERT = "ca.pem"
CA_KEY = "ca.key"


def check_identity(identity: str) -> str:
    """``identity`` if it can name a certificate (:data:`_LABEL`); else ConfigError."""
    if not _LABEL.fullmatch(identity):
        raise ConfigError(
            f"server id {identity!r} cannot name a TLS certificate: in a TLS cluster ids are "
            "letters, digits and inner hyphens (no '_', no '--' at the 3rd and 4th place), "
            "63 characters at most"
        )
    return identity


@dataclass(frozen=True)
class CertPaths:
    """The files of one certificates folder."""

    root: Path

    @property
    def ca_dir(self) -> Path:
        """The folder holding only the CA certificate (the clients' trust root)."""
        return self.root / CA_DIR

    @property
    def ca_cert(self) -> Path:
        """The CA certificate."""
        return self.ca_dir / CA_CERT

    @property
    def ca_key(self) -> Path:
        """The CA's private key (outside the trust folder)."""
        return self.root / CA_KEY

    def cert(self, identity: str) -> Path:
        """The certificate of ``identity`` (a server id, the master's id or ``admin``)."""
        return self.root / f"{identity}.pem"

    def key(self, identity: str) -> Path:
        """The private key of ``identity``."""
        return self.root / f"{identity}.key"


class ClusterTLS:
    """The TLS material of one process of the cluster: the CA and its own certificate.

    ``identity`` is the name its certificate carries (its server id, the master's id,
    or ``admin``). Missing files are a :class:`ConfigError` telling how to make them.
    """

    def __init__(self, root: Path, identity: str, command: str = "pomelo-twisted certs") -> None:
        self.paths = CertPaths(root)
        self.identity = check_identity(identity)
        hint = f"run `{command}` to create the cluster's certificates"
        for path in (self.paths.ca_cert, self.paths.cert(identity), self.paths.key(identity)):
            if not path.is_file():
                raise ConfigError(f"TLS is on but {path} is missing: {hint}")

    def __repr__(self) -> str:
        return f"<ClusterTLS {self.identity} in {self.paths.root}>"

    @cached_property
    def ca(self) -> Certificate:
        """The cluster CA's certificate."""
        return Certificate.loadPEM(self.paths.ca_cert.read_bytes())

    @cached_property
    def own(self) -> PrivateCertificate:
        """This process's certificate with its key."""
        pem = self.paths.cert(self.identity).read_bytes()
        return PrivateCertificate.loadPEM(pem + b"\n" + self.paths.key(self.identity).read_bytes())

    @cached_property
    def server_options(self) -> CertificateOptions:
        """A listener's options: present our certificate, require one signed by the CA."""
        return self.own.options(self.ca)

    def client(self, description: str, peer: str) -> str:
        """The ``ssl:`` client endpoint string for the ``tcp:`` one ``description``,
        presenting our certificate and accepting only ``peer``'s, signed by the CA."""
        kind, _, rest = description.partition(":")
        if kind != "tcp":
            raise ConfigError(f"TLS needs a tcp: endpoint, not {description!r}")
        quoted = [
            f"caCertsDir={quoteStringArgument(str(self.paths.ca_dir))}",
            f"certKey={quoteStringArgument(str(self.paths.cert(self.identity)))}",
            f"privateKey={quoteStringArgument(str(self.paths.key(self.identity)))}",
            f"hostname={quoteStringArgument(check_identity(peer))}",
        ]
        return ":".join([f"ssl:{rest}", *quoted])

    def server(self, reactor: IServerReactor, description: str) -> IStreamServerEndpoint:
        """The listener of endpoint string ``description`` (``tcp:``) with TLS on top."""
        return TLSServerEndpoint(serverFromString(reactor, description), self.server_options)


@implementer(IStreamServerEndpoint)
class TLSServerEndpoint:
    """``inner`` (a stream endpoint) with every connection wrapped in TLS (``options``)."""

    def __init__(self, inner: IStreamServerEndpoint, options: CertificateOptions) -> None:
        self.inner = inner
        self.options = options

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """Listen on ``inner``; each connection speaks TLS, then ``protocolFactory``'s."""
        wrapped = TLSMemoryBIOFactory(self.options, False, protocolFactory)
        d: Deferred[IListeningPort] = self.inner.listen(wrapped)
        return d


def peer_names(transport: object) -> frozenset[str] | None:
    """The (lower-case) DNS names of the certificate the peer of ``transport`` presented;
    None when the link is not TLS or the peer presented none."""
    get = getattr(transport, "getPeerCertificate", None)
    if get is None:
        return None
    certificate = get()
    if certificate is None:
        return None
    try:
        names = certificate.to_cryptography().extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(name.lower() for name in names.value.get_values_for_type(x509.DNSName))


def cluster_tls(config: GameConfig, identity: str) -> ClusterTLS | None:
    """The TLS material of ``identity`` when master.json declares ``tls`` for the
    environment; None when the cluster speaks plaintext."""
    root = config.tls_dir()
    if root is None:
        return None
    command = f"pomelo-twisted certs --app {config.base_dir} --env {config.env}"
    return ClusterTLS(root, identity, command)
