"""Path checks shared by every command that writes: refuse before writing anything."""

import os
import tempfile

from zoo.errors import InvalidParameterError, InvalidTypeError


def check_writable_dir(out_dir, field="out_dir"):
    """Refuse an output directory that is a file or cannot be written; leave nothing behind.

    Permission bits say little when running as root, so this tries a real write.
    """
    if not isinstance(out_dir, (str, os.PathLike)):
        raise InvalidTypeError(f"`{field}` must be a path. Received: {field}={out_dir!r}")
    path = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(path) and not os.path.isdir(path):
        raise InvalidParameterError(
            f"`{field}` must be a directory, but a file is in its place. Received: {field}={os.fspath(out_dir)!r}"
        )
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InvalidParameterError(
            f"`{field}` cannot be created: {existing!r} is a file. Received: {field}={os.fspath(out_dir)!r}"
        )
    created = []
    try:
        probe = path
        missing = []
        while not os.path.exists(probe):
            missing.append(probe)
            probe = os.path.dirname(probe)
        for directory in reversed(missing):
            os.mkdir(directory)
            created.append(directory)
        handle, probe_file = tempfile.mkstemp(dir=path, prefix=".write-probe-")
        os.close(handle)
        os.remove(probe_file)
    except OSError as error:
        raise InvalidParameterError(
            f"`{field}` must be a writable directory ({error.strerror or error}). "
            f"Received: {field}={os.fspath(out_dir)!r}"
        ) from None
    finally:
        for directory in reversed(created):
            try:
                os.rmdir(directory)
            except OSError:
                pass
    return path
