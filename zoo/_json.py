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
    text = json.dumps(jsonable(data), indent=indent, default=str)
    temp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        with open(temp, encoding="utf-8") as handle:
            json.load(handle)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
