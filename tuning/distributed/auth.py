"""The cluster's shared secret and TLS: the token every worker call carries, the chief's check of
it (constant-time, one log line per refused sender), and the certificates of a TLS chief."""

import dataclasses
import hashlib
import hmac
import os
import re
import secrets
import threading

import grpc

from tuning.distributed.addresses import WORKER_ID
from zoo.errors import InvalidParameterError

TOKEN_ENV = "ZOO_CLUSTER_TOKEN"
TOKEN_METADATA = "authorization"  # sent as "Bearer <token>"
TOKEN_PATTERN = re.compile(r"^[\x21-\x7e]{16,}$")  # printable ASCII: a gRPC metadata value
HOW_TO_GIVE = (f"give the same token to the chief and every worker with --token-file PATH (a file "
               f"readable by you only) or the {TOKEN_ENV} environment variable")
# why a call is refused: (the chief's log, what the caller is told)
MISSING = ("no cluster token", "this chief needs the cluster token")
WRONG = ("a wrong cluster token", "the cluster token is wrong")
MAX_LOGGED = 256  # refused senders logged; a flood of made-up ids cannot fill the log


@dataclasses.dataclass(frozen=True)
class Credentials:
    """What one process of the cluster proves itself with: the token and, for TLS, the chief's
    certificate chain and private key, or a worker's trusted root certificates (PEM bytes)."""

    token: str | None = dataclasses.field(default=None, repr=False)
    certificate: bytes | None = None
    private_key: bytes | None = dataclasses.field(default=None, repr=False)
    trusted: bytes | None = None

    def metadata(self):
        """The token as the gRPC metadata of every call (nothing without a token)."""
        return [(TOKEN_METADATA, f"Bearer {self.token}")] if self.token else []

    def server_credentials(self):
        """gRPC's server credentials of a TLS chief; None for plaintext."""
        if self.certificate is None:
            return None
        return grpc.ssl_server_credentials([(self.private_key, self.certificate)])

    def channel(self, address, options):
        """A channel to the chief: TLS verified against `trusted` when given, plaintext otherwise."""
        if self.trusted is None:
            return grpc.insecure_channel(address, options=options)
        return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=self.trusted),
                                   options=options)


def _read(path, option):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise InvalidParameterError(
            f"`{option}` {path} cannot be read ({error.strerror or error}). Received: {option}={path}"
        ) from None


def read_token(path, option="--token-file"):
    """The token a file holds (surrounding whitespace ignored), checked."""
    text = _read(path, option).decode("utf-8", errors="replace").strip()
    return check_token(text, f"`{option}` {path}", f"{option}={path}")


def check_token(token, source, received):
    if not TOKEN_PATTERN.match(token):
        raise InvalidParameterError(
            f"the cluster token in {source} must be at least 16 printable ASCII characters without "
            f"spaces (make one with: python -c \"import secrets; print(secrets.token_urlsafe(32))\"). "
            f"Received: {received}")
    return token


def resolve_token(token_file=None):
    """The cluster token from `--token-file`, else `ZOO_CLUSTER_TOKEN`, else None."""
    if token_file is not None:
        return read_token(token_file)
    token = os.environ.get(TOKEN_ENV)
    if token is None:
        return None
    return check_token(token.strip(), f"${TOKEN_ENV}", f"{TOKEN_ENV}=<{len(token)} characters>")


def generate_token():
    """A fresh token, for a chief on loopback that was given none and hands it to its own workers."""
    return secrets.token_urlsafe(32)


def read_certificates(cert_path, key_path):
    """A TLS chief's certificate chain and private key (PEM), each file named when it is unusable."""
    certificate = _read(cert_path, "--tls-cert")
    private_key = _read(key_path, "--tls-key")
    if b"-----BEGIN CERTIFICATE-----" not in certificate:
        raise InvalidParameterError(
            f"`--tls-cert` {cert_path} holds no PEM certificate. Received: --tls-cert={cert_path}")
    if not re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----", private_key):
        raise InvalidParameterError(
            f"`--tls-key` {key_path} holds no PEM private key. Received: --tls-key={key_path}")
    return certificate, private_key


def read_trusted(ca_path):
    """A worker's trusted root certificates (PEM): the chief's own certificate, or its CA's."""
    trusted = _read(ca_path, "--tls-ca")
    if b"-----BEGIN CERTIFICATE-----" not in trusted:
        raise InvalidParameterError(f"`--tls-ca` {ca_path} holds no PEM certificate. Received: --tls-ca={ca_path}")
    return trusted


def _digest(text):
    return hashlib.sha256(text.encode()).digest()  # equal lengths: the comparison leaks nothing


class TokenCheck(grpc.ServerInterceptor):
    """The chief's gate in front of every method (`Hello` and each oracle method): a call without
    the token, or with another one, is answered UNAUTHENTICATED and never reaches the handler.
    Each refused sender (address, worker id, reason) is logged once."""

    def __init__(self, token):
        self._expected = _digest(f"Bearer {token}")
        self._logged = set()
        self._lock = threading.Lock()

    def intercept_service(self, continuation, handler_call_details):
        metadata = dict(handler_call_details.invocation_metadata or ())
        sent = metadata.get(TOKEN_METADATA)
        if sent is not None and hmac.compare_digest(_digest(sent), self._expected):
            return continuation(handler_call_details)
        reason = MISSING if sent is None else WRONG
        worker_id = metadata.get("zoo-worker-id")

        def refuse(request, context):
            self._log(context.peer(), worker_id, reason)
            context.abort(grpc.StatusCode.UNAUTHENTICATED, f"{reason[1]}: {HOW_TO_GIVE}")

        return grpc.unary_unary_rpc_method_handler(refuse)

    def _log(self, peer, worker_id, reason):
        host = peer.split(":", 1)[-1].rpartition(":")[0] or peer  # "ipv4:10.0.0.5:51234" -> 10.0.0.5
        worker_id = worker_id if WORKER_ID.match(worker_id or "") else None  # anything may be sent
        key = (host, worker_id, reason[0])
        with self._lock:
            if key in self._logged or len(self._logged) >= MAX_LOGGED:
                return
            self._logged.add(key)
        who = f"worker '{worker_id}'" if worker_id else "a client"
        print(f"refused {who} from {host}: {reason[0]} (later refusals of it are not logged)", flush=True)
