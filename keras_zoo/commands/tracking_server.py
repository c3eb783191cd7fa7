"""`zoo tracking-server`: an MLflow server on loopback by default, that every process of a
distributed search logs to; off loopback only with MLflow's authentication (the admin's
credentials from a file or the environment, never the command line). Importing this module does
not import TensorFlow or MLflow."""

import signal


def add_arguments(parser):
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default: 127.0.0.1, this machine only; "
                             "0.0.0.0 for workers on other hosts, which needs authentication)")
    parser.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    parser.add_argument("--backend-store", default="sqlite:///mlflow.db", metavar="URI",
                        help="database for runs and metrics (default: sqlite:///mlflow.db; "
                             "postgresql://... for many workers)")
    parser.add_argument("--artifacts", default="mlartifacts", metavar="URI",
                        help="where the server keeps artifacts it is sent (default: ./mlartifacts)")
    parser.add_argument("--server-workers", type=int, default=1, metavar="K",
                        help="mlflow server's request-handling processes (default: 1)")
    group = parser.add_argument_group("authentication (MLflow's basic-auth app; required off loopback)")
    group.add_argument("--credentials-file", metavar="PATH",
                       help="a file holding one line ADMIN_USERNAME:PASSWORD (else "
                            "$MLFLOW_AUTH_ADMIN_USERNAME and $MLFLOW_AUTH_ADMIN_PASSWORD); clients "
                            "send them as MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD")
    group.add_argument("--auth-db", default="sqlite:///basic_auth.db", metavar="URI",
                       help="MLflow's users database (default: sqlite:///basic_auth.db); the admin "
                            "user is created in it on the first start")
    group.add_argument("--allowed-hosts", metavar="NAMES",
                       help="comma-separated host names clients reach the server by (besides "
                            "loopback and private addresses; default off loopback: this machine's names)")


def main(args):
    from tuning import server

    credentials = server.resolve_credentials(args.credentials_file)
    auth = None
    if credentials is not None:
        auth = server.Auth(*credentials, database=args.auth_db,
                           allowed_hosts=server.host_names(args.host, args.allowed_hosts))
    elif args.allowed_hosts is not None:
        from zoo.errors import InvalidParameterError

        raise InvalidParameterError(
            f"`--allowed-hosts` applies to an authenticated server: {server.HOW_TO_GIVE}. "
            f"Received: --allowed-hosts={args.allowed_hosts}")
    process = server.start(host=args.host, port=args.port, backend_store=args.backend_store,
                           artifacts=args.artifacts, server_workers=args.server_workers, auth=auth)
    guard = "no authentication: loopback only"
    if auth is not None:
        names = ", ".join(auth.allowed_hosts) or "loopback and private addresses only"
        guard = f"MLflow authentication as {auth.username!r}; host names: {names}"
    print(f"tracking server: http://{args.host}:{args.port} (backend {args.backend_store}; {guard}); "
          f"set tracking.uri or MLFLOW_TRACKING_URI to it", flush=True)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        server.stop(process)
    return 0 if code in (0, -signal.SIGTERM) else 1
