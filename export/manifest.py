"""The export manifest: what was written, its sha256, parity and latency."""

import dataclasses
import hashlib
import json
import os

from zoo._json import write_json_atomic

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1

# An artifact is "ok" only when it ran in its runtime and matched Keras; "unverified" when it was
# written on request but no runtime here can run it (TFLite with Flex ops); "failed" otherwise.
STATUSES = ("ok", "failed", "unverified")


@dataclasses.dataclass
class Artifact:
    """One exported file (or SavedModel directory) and what checking it found."""

    name: str
    format: str
    quantization: str = None
    path: str = None  # relative to the export directory; None when nothing was kept
    status: str = "failed"
    error: str = None
    sha256: str = None
    size_bytes: int = None
    inputs: list = None
    outputs: list = None
    parity: dict = None
    latency_ms: dict = None
    converter: str = None
    notes: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return self.status == "ok"


@dataclasses.dataclass
class Manifest:
    """Everything `export_model` did; `manifest.json` in the export directory holds it."""

    out_dir: str
    model: dict
    converters: dict
    created: str = None
    reference: dict = None
    samples: dict = None
    artifacts: list = dataclasses.field(default_factory=list)
    status: str = "in_progress"
    schema_version: int = SCHEMA_VERSION
    # what a deployment needs beside the artifact: class names and, for a table model, which inputs
    # the artifacts take (`inputs`: "raw" columns, documented in `tabular.inputs`, or the "codes"
    # matrix that the vocabularies and encodings describe); `zoo predict` reads it
    preprocessing: dict = None
    # a deployment-aware search's figures for this model beside what the export measured
    deployment: dict = None

    @property
    def ok(self):
        """True when every artifact passed verification."""
        return bool(self.artifacts) and all(artifact.ok for artifact in self.artifacts)

    @property
    def failed(self):
        return [artifact for artifact in self.artifacts if artifact.status == "failed"]

    def __getitem__(self, name):
        for artifact in self.artifacts:
            if artifact.name == name:
                return artifact
        raise KeyError(name)

    def path_of(self, name):
        """Absolute path of a kept artifact, or None."""
        artifact = self[name]
        return os.path.join(self.out_dir, artifact.path) if artifact.path else None

    def to_dict(self):
        data = dataclasses.asdict(self)
        data.pop("out_dir")
        return data

    @classmethod
    def from_dict(cls, data, out_dir):
        data = dict(data)
        artifacts = [Artifact(**item) for item in data.pop("artifacts", [])]
        return cls(out_dir=os.fspath(out_dir), artifacts=artifacts, **data)

    def write(self):
        """Replace `manifest.json` atomically with this manifest."""
        write_json_atomic(os.path.join(self.out_dir, MANIFEST_NAME), self.to_dict())


def load_manifest(out_dir):
    """Read the manifest of an export directory."""
    with open(os.path.join(out_dir, MANIFEST_NAME), encoding="utf-8") as handle:
        return Manifest.from_dict(json.load(handle), out_dir)


def digest(path):
    """(sha256 hex, size in bytes) of a file, or of a directory's files in sorted relative order."""
    sha = hashlib.sha256()
    size = 0
    if os.path.isdir(path):
        files = []
        for root, dirs, names in os.walk(path):
            dirs.sort()
            files.extend(os.path.join(root, name) for name in sorted(names))
        for file_path in files:
            relative = os.path.relpath(file_path, path).replace(os.sep, "/")
            sha.update(relative.encode() + b"\0")
            size += _hash_file(file_path, sha)
    else:
        size = _hash_file(path, sha)
    return sha.hexdigest(), size


def _hash_file(path, sha):
    size = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
            size += len(chunk)
    return size


def check_manifest(out_dir):
    """Re-hash every kept artifact; return a list of problems (empty when all match)."""
    manifest = load_manifest(out_dir)
    problems = []
    for artifact in manifest.artifacts:
        if not artifact.path:
            continue
        path = os.path.join(out_dir, artifact.path)
        if not os.path.exists(path):
            problems.append(f"{artifact.name}: {artifact.path} is missing")
            continue
        sha, size = digest(path)
        if sha != artifact.sha256:
            problems.append(f"{artifact.name}: {artifact.path} sha256 {sha[:12]}… does not match the "
                            f"manifest's {str(artifact.sha256)[:12]}… (size {size} vs {artifact.size_bytes})")
    return problems
