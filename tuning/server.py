"""An `mlflow server` with a database backend, bound to loopback by default, that every process of
a distributed search logs to (`zoo tracking-server`); off loopback only with MLflow's own
authentication and named allowed hosts. Also the check a client makes of its credentials.

Importing this module does not import TensorFlow or MLflow."""

import base64
import dataclasses
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

from tuning.distributed.addresses import is_loopback
from tuning.processes import terminate
from zoo.errors import InvalidParameterError

ADMIN_USERNAME_ENV = "MLFLOW_AUTH_ADMIN_USERNAME"  # MLflow's own names for the admin's credentials
ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"
CLIENT_USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"  # what an MLflow client sends
CLIENT_PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"
MIN_PASSWORD = 12  # MLflow's password policy
HOW_TO_GIVE = (f"give the admin's credentials with --credentials-file PATH (one line USERNAME:PASSWORD, "
               f"a file readable by you only) or {ADMIN_USERNAME_ENV} and {ADMIN_PASSWORD_ENV}")


@dataclasses.dataclass(frozen=True)
class Auth:
    """MLflow's basic authentication of one server: the admin user it creates on its first start
    (kept in `database`, MLflow's users database; later starts do not change its password) and
    the host names it answers to besides loopback and private addresses."""

    username: str
    password: str = dataclasses.field(repr=False)
    database: str = "sqlite:///basic_auth.db"
    allowed_hosts: tuple = ()


def check_port_free(host, port):
    """Refuse, in one line, a port something already listens on (before starting anything)."""
    if not 1 <= port <= 65535:
        raise InvalidParameterError(f"`--port` must be in [1, 65535]. Received: --port={port}")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # as servers do: connections of an earlier server in TIME_WAIT do not block the port
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise InvalidParameterError(
            f"`--port` {port} on {host} cannot be used ({error.strerror or error}). "
            f"Received: --host={host} --port={port}") from None


def _check_sqlite_folder(uri, option):
    if uri.startswith("sqlite:///"):
        folder = os.path.dirname(os.path.abspath(uri[len("sqlite:///"):]))
        if not os.path.isdir(folder):
            raise InvalidParameterError(
                f"`{option}` points into a folder that does not exist. Received: {option}={uri}")


def _check_credentials(username, password, source):
    if not username or any(c.isspace() or c == ":" for c in username):
        raise InvalidParameterError(
            f"the admin username in {source} must be non-empty, without spaces or ':'")
    if len(password) < MIN_PASSWORD:
        raise InvalidParameterError(
            f"the admin password in {source} must be at least {MIN_PASSWORD} characters (MLflow's rule)")
    return username, password


def read_credentials(path):
    """(username, password) from a file holding one line `USERNAME:PASSWORD`."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidParameterError(
            f"`--credentials-file` {path} cannot be read ({getattr(error, 'strerror', None) or error}). "
            f"Received: --credentials-file={path}") from None
    username, colon, password = text.partition(":")
    if not colon or "\n" in text:
        raise InvalidParameterError(
            f"`--credentials-file` {path} must hold one line USERNAME:PASSWORD. "
            f"Received: --credentials-file={path}")
    return _check_credentials(username, password, f"`--credentials-file` {path}")


def resolve_credentials(path=None):
    """The admin's credentials from `--credentials-file`, else MLflow's own variables, else None."""
    if path is not None:
        return read_credentials(path)
    password = os.environ.get(ADMIN_PASSWORD_ENV)
    if not password:
        return None
    return _check_credentials(os.environ.get(ADMIN_USERNAME_ENV) or "admin", password, f"${ADMIN_PASSWORD_ENV}")


def host_names(host, names=None):
    """The names the server answers to besides MLflow's defaults: `--allowed-hosts` (comma
    separated), else, off loopback, this machine's own names (and the address it listens on)."""
    if names is not None:
        listed = [name.strip() for name in names.split(",") if name.strip()]
        if not listed or "*" in listed:
            raise InvalidParameterError(
                "`--allowed-hosts` must name the hosts clients reach the server by (a '*' would let "
                f"any name in, DNS rebinding included). Received: --allowed-hosts={names}")
        return tuple(dict.fromkeys(listed))
    if is_loopback(host):
        return ()
    own = [socket.gethostname(), socket.getfqdn()]
    if host not in ("0.0.0.0", "::"):
        own.append(host)
    return tuple(dict.fromkeys(name for name in own if name))


def allowed_hosts(names):
    """MLflow's `--allowed-hosts` value: its defaults (loopback and private addresses) and each of
    `names`, with any port."""
    from tuning.tracking import default_allowed_hosts

    defaults = default_allowed_hosts()
    return ",".join(dict.fromkeys([*defaults, *[f"{n}{suffix}" for n in names for suffix in ("", ":*")]]))


def mlflow_command(*, host, port, backend_store, artifacts, server_workers=1, auth=None):
    command = [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port),
               "--backend-store-uri", backend_store, "--artifacts-destination", artifacts,
               "--workers", str(server_workers)]
    if auth is not None:
        command += ["--app-name", "basic-auth"]  # the credentials travel in the environment
        if auth.allowed_hosts:
            command += ["--allowed-hosts", allowed_hosts(auth.allowed_hosts)]
    return command


# MLflow checks the password hash on every request (about 0.5 s on 2 cores: seconds a trial);
# a verified credential is kept this long in each server worker, so a password changed out of
# band still opens that worker for up to this long (MLflow's own cache, off by default)
AUTH_CACHE_SECONDS = 60


def _auth_environment(auth, folder):
    """The variables that give `mlflow server --app-name basic-auth` its set-up: an auth config
    file written in `folder` (no secret in it) and the admin's credentials."""
    config = os.path.join(folder, "basic_auth.ini")
    with open(config, "w", encoding="utf-8") as handle:  # read by MLflow's ConfigParser: % doubled
        handle.write("[mlflow]\ndefault_permission = READ\n"
                     f"database_uri = {auth.database.replace('%', '%%')}\n"
                     f"admin_username = {auth.username}\n"
                     "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                     f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}\n")
    return {"MLFLOW_AUTH_CONFIG_PATH": config, ADMIN_USERNAME_ENV: auth.username,
            ADMIN_PASSWORD_ENV: auth.password,
            # CSRF protection of MLflow's sign-up form: one key shared by the server's workers
            "MLFLOW_FLASK_SERVER_SECRET_KEY": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
            or secrets.token_hex(32)}


def start(*, host, port, backend_store, artifacts, server_workers=1, auth=None):
    """Check the port, the folders and the authentication, then start `mlflow server` in a
    process group of its own (so that its worker processes end with it); returns the Popen.
    Off loopback, `auth` (an `Auth`) is required."""
    if server_workers < 1:
        raise InvalidParameterError(
            f"`--server-workers` must be an integer >= 1. Received: --server-workers={server_workers}")
    if auth is None and not is_loopback(host):
        raise InvalidParameterError(
            f"the tracking server would listen on {host}, off loopback, without authentication: "
            f"{HOW_TO_GIVE}. Received: --host={host}")
    check_port_free(host, port)
    _check_sqlite_folder(backend_store, "--backend-store")
    if auth is not None:
        _check_sqlite_folder(auth.database, "--auth-db")
    command = mlflow_command(host=host, port=port, backend_store=backend_store,
                             artifacts=artifacts, server_workers=server_workers, auth=auth)
    # MLflow's background-job runner (eight more processes, for its GenAI features) is not needed
    # to track searches; a user who wants it sets the variable
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    folder = None
    if auth is not None:
        folder = tempfile.mkdtemp(prefix="zoo-tracking-auth-")
        env.update(_auth_environment(auth, folder))
    process = subprocess.Popen(command, start_new_session=True, env=env)
    process.auth_folder = folder
    return process


def stop(process):
    """End the server and its worker processes."""
    terminate([process], term_wait=10.0, group=True)
    if getattr(process, "auth_folder", None):
        shutil.rmtree(process.auth_folder, ignore_errors=True)


def check_credentials(uri):
    """Refuse, in one line, an http(s) tracking server that asks for credentials this process does
    not have (`MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD`) or has wrong. A server
    that does not answer is left to the reachability check."""
    if not uri.startswith(("http://", "https://")):
        return
    request = urllib.request.Request(uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1")
    username, password = os.environ.get(CLIENT_USERNAME_ENV), os.environ.get(CLIENT_PASSWORD_ENV)
    if username and password:
        pair = base64.b64encode(f"{username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {pair}")
    elif os.environ.get("MLFLOW_TRACKING_TOKEN"):
        request.add_header("Authorization", f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
    except urllib.error.HTTPError as error:
        if error.code not in (401, 403):
            return
        if username and password:
            what = f"refused the user {username!r} of {CLIENT_USERNAME_ENV} (HTTP {error.code})"
        elif error.code == 403:
            what = "refused this process (HTTP 403)"
        else:
            what = f"needs credentials: set {CLIENT_USERNAME_ENV} and {CLIENT_PASSWORD_ENV}"
        raise InvalidParameterError(f"the tracking server at {uri} {what}. Received: tracking.uri={uri}") from None
    except (urllib.error.URLError, OSError, ValueError):
        return
