"""`zoo tracking sync DIR`: replay into MLflow what a search kept locally while its tracking
server was down. Importing this module does not import TensorFlow."""

import os

from zoo.errors import InvalidParameterError


def add_arguments(parser):
    parser.add_argument("action", choices=("sync",), help="sync: replay the local tracking journal")
    parser.add_argument("directory", help="the search folder (<out>/search) holding the journal")
    parser.add_argument("--tracking-uri", help="replay into this store instead of the one the "
                                               "search was using")


def main(args):
    from tuning.tracking import JOURNAL, check_reachable, replay_journal

    journal = os.path.join(args.directory, JOURNAL)
    if not os.path.isfile(journal):
        raise InvalidParameterError(
            f"`directory` holds no tracking journal ({JOURNAL}): nothing to replay. "
            f"Received: directory={args.directory!r}"
        )
    if args.tracking_uri:
        check_reachable(args.tracking_uri)
    replayed = replay_journal(args.directory, uri=args.tracking_uri)
    print(f"replayed {replayed} tracking writes from {journal}")
    return 0
