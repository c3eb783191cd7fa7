"""`zoo tracking-server`: an MLflow server on loopback by default, that every process of a
distributed search logs to. Importing this module does not import TensorFlow or MLflow."""

import signal


def add_arguments(parser):
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default: 127.0.0.1, this machine only; "
                             "0.0.0.0 for workers on other hosts)")
    parser.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    parser.add_argument("--backend-store", default="sqlite:///mlflow.db", metavar="URI",
                        help="database for runs and metrics (default: sqlite:///mlflow.db; "
                             "postgresql://... for many workers)")
    parser.add_argument("--artifacts", default="mlartifacts", metavar="URI",
                        help="where the server keeps artifacts it is sent (default: ./mlartifacts)")
    parser.add_argument("--server-workers", type=int, default=1, metavar="K",
                        help="mlflow server's request-handling processes (default: 1)")


def main(args):
    from tuning import server

    process = server.start(host=args.host, port=args.port, backend_store=args.backend_store,
                           artifacts=args.artifacts, server_workers=args.server_workers)
    print(f"tracking server: http://{args.host}:{args.port} (backend {args.backend_store}); "
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
