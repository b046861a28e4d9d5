"""TLS for the collector's listeners: the certificate and key, loaded and checked once."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

from assay.collector.settings import CollectorSettings, check_tls


@dataclass(frozen=True)
class ServerTls:
    cert_file: Path
    key_file: Path
    cert_pem: bytes
    key_pem: bytes

    def grpc_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key_pem, self.cert_pem)])


def load_server_tls(settings: CollectorSettings) -> ServerTls | None:
    """The TLS material the settings name (None: plain listeners). Raises OSError saying what
    is wrong, before any port is opened: grpc would otherwise fail later and less clearly."""
    try:
        check_tls(settings)
    except ValueError as exc:
        raise OSError(str(exc)) from exc
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    cert_file, key_file = settings.tls_cert, settings.tls_key
    try:
        # The same check uvicorn makes, done here so both listeners fail alike and early.
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_file, key_file)
        cert_pem, key_pem = cert_file.read_bytes(), key_file.read_bytes()
    except (OSError, ssl.SSLError) as exc:
        raise OSError(f"cannot use TLS certificate {cert_file} with key {key_file}: {exc}") from exc
    return ServerTls(cert_file, key_file, cert_pem, key_pem)
