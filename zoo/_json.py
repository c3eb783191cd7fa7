"""JSON for every file the product writes: plain values from numpy, and atomic writes."""

import json
import math
import os
import uuid


def jsonable(value):
    """Plain Python values for `json.dumps`: tuples as lists, numpy scalars/arrays unwrapped,
    NaN/inf as None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy array or scalar, no import
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path, data, *, indent=2):
    """Write JSON to a temp file beside `path`, read it back, then rename it over `path`: a
    reader never sees half a file, and a crash leaves the old one."""
    write_text_atomic(path, json.dumps(jsonable(data), indent=indent, default=str), check=json.loads)


def write_text_atomic(path, text, *, sync=True, check=None):
    """Write `text` to a temp file beside `path` and rename it over `path` (`os.replace` is atomic):
    a process killed at any point leaves either the old file or the new one, never a truncated one.
    `sync` also flushes it to the disk (against power loss, not only a killed process); `check`, if
    given, is called on the text read back before the rename."""
    temp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        if check is not None:
            with open(temp, encoding="utf-8") as handle:
                check(handle.read())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
