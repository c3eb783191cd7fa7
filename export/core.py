"""`export_model`: write each format to a temp path, run it in its runtime, compare with Keras,
then rename it into place and list it in the manifest."""

import datetime
import glob
import os
import shutil
import tempfile

from export import formats as fmt
from export import raw, verify
from export._options import FORMATS, check_options, check_out_dir
from export.manifest import Artifact, Manifest, digest
from export.parts import exportable_parts
from export.runtimes import FlexDelegateMissing, KerasRunner, open_runner
from zoo.errors import InvalidParameterError, InvalidTypeError

DEFAULT_FORMATS = FORMATS  # every format, in the order they are written


def export_model(model, out_dir, formats=DEFAULT_FORMATS, *, quantize=(), representative_data=None,
                 opset=None, samples=None, labels=None, allow_flex=False, int8_io=False, atol=1e-5,
                 rtol=1e-5, min_agreement=0.9, latency_repeats=20, preprocessing=None, inputs="raw"):
    """Export a Keras model to each format, verify every artifact against Keras, write a manifest.

    Args:
        model: a built Keras model (for GAN/VAE export the generator/decoder and encoder models;
            for Siamese the embedding model).
        out_dir: directory for the artifacts and `manifest.json`; created if missing.
        formats: any of 'keras', 'savedmodel', 'tflite', 'onnx' (list or comma-separated string).
        quantize: extra TFLite variants: 'float16', 'dynamic' (int8 weights), 'int8' (full integer).
        representative_data: inputs (array, list of arrays or dict by input name) that calibrate
            'int8'; also the verification samples when `samples` is not given.
        opset: ONNX opset (tf2onnx's default when None).
        samples, labels: verification inputs and optional labels (accuracy is then reported);
            by default the representative data, else 32 inputs generated from the input spec.
        allow_flex: let TFLite use TF Select (Flex) ops instead of refusing the model.
        int8_io: give the 'int8' model int8 inputs and outputs (float32 otherwise).
        atol, rtol: float32 parity tolerance; min_agreement: quantized class agreement to pass.
        latency_repeats: timed calls per batch size for the median latency; 0 skips timing.
        preprocessing: JSON-able notes a deployment needs beside the artifacts (class names;
            for a table model, `preprocessing["tabular"]`: `TabularPreprocessor.to_dict()`),
            stored in the manifest.
        inputs: for a table model on its codes matrix (`preprocessing["tabular"]` given): 'raw'
            (default) exports it behind the category lookups, so every artifact takes the raw
            columns (strings as strings; `zoo.preprocessing.artifact_input_specs`), verified on the
            samples' rows plus unseen and missing categories; 'codes' exports the codes model as it
            is, for targets that cannot hold a string table. The manifest says which.

    Returns:
        The `Manifest`; `manifest.ok` is True when every artifact passed. A format that fails
        is listed as failed with the reason and leaves no file; the others go on. A subclassed
        model with Functional parts (GAN, VAE, autoencoder, Siamese) exports each part to
        `out_dir/<part>/` and returns a dict of manifests by part name.

    Example:
        >>> manifest = export_model(model, "out/export", quantize=("dynamic",))
        >>> manifest["tflite_dynamic"].parity["passed"]
        True
    """
    model, samples, labels, representative_data, preprocessing = raw.prepare(
        model, preprocessing, inputs, samples=samples, labels=labels, representative_data=representative_data)
    parts = exportable_parts(model)
    options = dict(quantize=quantize, representative_data=representative_data, opset=opset,
                   samples=samples, labels=labels, allow_flex=allow_flex, int8_io=int8_io, atol=atol,
                   rtol=rtol, min_agreement=min_agreement, latency_repeats=latency_repeats,
                   preprocessing=preprocessing)
    if parts[0][0] is None:
        return _export_graph(model, out_dir, formats, **options)
    formats, options["quantize"], _ = check_options(
        formats, quantize, opset, has_representative_data=representative_data is not None)
    per_part = {name: _options_for_part(part, options) for name, part in parts}
    for field in ("representative_data", "samples"):  # data that fits no part is a mistake
        if options[field] is not None and all(o[field] is None for o in per_part.values()):
            verify.as_input_arrays(options[field], parts[0][1], field)
    out_dir = check_out_dir(out_dir)
    return {name: _export_graph(part, os.path.join(out_dir, name), formats, **per_part[name])
            for name, part in parts}


def _options_for_part(part, options):
    """The data options a part can take: the model's data feeds parts with the same input (encoder,
    discriminator, embedding); latent-input parts verify and calibrate on generated latents."""
    options = dict(options)
    for field in ("representative_data", "samples"):
        if options[field] is None:
            continue
        try:
            verify.as_input_arrays(options[field], part, field)
        except (InvalidParameterError, InvalidTypeError):
            options[field] = None
            if field == "samples":
                options["labels"] = None
    if options["representative_data"] is None and "int8" in options["quantize"]:
        options["representative_data"] = verify.generated_inputs(part, count=verify.CALIBRATION_SAMPLES)
    if options["samples"] is None:
        options["labels"] = None
    return options


def _export_graph(model, out_dir, formats, *, quantize, representative_data, opset, samples, labels,
                  allow_flex, int8_io, atol, rtol, min_agreement, latency_repeats, preprocessing=None):
    import keras

    if not isinstance(model, keras.Model) or not getattr(model, "inputs", None):
        raise InvalidTypeError(
            f"`model` must be a built Keras model with known inputs (a Functional or Sequential "
            f"model). Received: model of type {type(model).__name__}"
        )
    formats, quantize, opset = check_options(formats, quantize, opset,
                                             has_representative_data=representative_data is not None)
    calibration = None
    if representative_data is not None:
        calibration = verify.as_input_arrays(representative_data, model, "representative_data")
    if samples is not None:
        sample_arrays, source = verify.as_input_arrays(samples, model, "samples"), "samples"
    elif calibration is not None:
        sample_arrays, source, labels = calibration, "representative_data", None
    else:
        sample_arrays, source, labels = verify.generated_inputs(model), "generated from the input spec", None
    sample_arrays = [array[:verify.MAX_SAMPLES] for array in sample_arrays]
    if labels is not None:
        labels = labels[:verify.MAX_SAMPLES]
    out_dir = check_out_dir(out_dir)
    os.makedirs(out_dir, exist_ok=True)

    reference = KerasRunner(model)
    expected = reference(sample_arrays)
    kinds = verify.output_kinds(model)
    manifest = Manifest(
        out_dir=out_dir,
        model={"name": model.name, "inputs": reference.inputs, "outputs": reference.outputs,
               "output_kinds": kinds, "params": int(model.count_params())},
        converters=_versions(),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        samples={"source": source, "count": int(len(sample_arrays[0])), "labels": labels is not None},
        preprocessing=preprocessing,
        reference={"runtime": reference.runtime,
                   "accuracy": [verify.accuracy(out, kind, labels) for out, kind in zip(expected, kinds)],
                   "latency_ms": verify.latency(reference, sample_arrays, latency_repeats)},
    )
    manifest.write()  # lists nothing yet: old artifacts are unlisted before any is replaced

    plan = [(name, name, None) for name in formats]
    if "tflite" in formats:
        plan += [(f"tflite_{mode}", "tflite", mode) for mode in quantize]
    context = {"model": model, "samples": sample_arrays, "expected": expected, "kinds": kinds,
               "labels": labels, "opset": opset, "allow_flex": allow_flex, "int8_io": int8_io,
               "calibration": calibration, "atol": atol, "rtol": rtol,
               "min_agreement": min_agreement, "latency_repeats": latency_repeats}
    for stale in glob.glob(os.path.join(out_dir, ".export-tmp-*")):  # left by a killed export
        shutil.rmtree(stale, ignore_errors=True)
    work = tempfile.mkdtemp(prefix=".export-tmp-", dir=out_dir)
    try:
        for name, fmt_name, mode in plan:
            manifest.artifacts.append(_export_one(name, fmt_name, mode, work, context))
            manifest.write()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    manifest.status = "complete"
    manifest.write()
    return manifest


def _export_one(name, fmt_name, mode, work, context):
    """Write, run, compare, time, then rename into place; a failure returns a failed record."""
    model = context["model"]
    artifact = Artifact(name=name, format=fmt_name, quantization=mode)
    temp = os.path.join(work, fmt.file_name(fmt_name, mode))
    try:
        artifact.converter, artifact.notes = _write(fmt_name, mode, model, temp, work, context)
    except fmt.ConversionError as error:
        artifact.error = str(error)
        return artifact
    except Exception as error:  # a converter crash fails this format only
        artifact.error = f"{fmt_name} conversion failed: {_first_line(error)}"
        return artifact
    try:
        runner = open_runner(fmt_name, temp, model)
        artifact.inputs, artifact.outputs = runner.inputs, runner.outputs
        outputs = runner(context["samples"])
    except FlexDelegateMissing as error:
        artifact.status = "unverified"
        artifact.error = (f"written with Flex ops, which the LiteRT interpreter here cannot run "
                          f"({error}); verify it where the Flex delegate is linked")
        artifact.sha256, artifact.size_bytes = digest(temp)
        artifact.path = _place(temp, work)
        return artifact
    except Exception as error:
        artifact.error = f"{fmt_name} artifact does not run in its runtime: {_first_line(error)}"
        return artifact
    artifact.parity = verify.compare(
        context["expected"], outputs, kinds=context["kinds"], labels=context["labels"],
        quantized=mode is not None, atol=context["atol"], rtol=context["rtol"],
        min_agreement=context["min_agreement"])
    if not artifact.parity["passed"]:
        worst = max(entry["max_abs_error"] for entry in artifact.parity["outputs"])
        artifact.error = f"parity with Keras failed (max abs error {worst:.3g}; {artifact.parity['criterion']})"
        return artifact
    artifact.latency_ms = verify.latency(runner, context["samples"], context["latency_repeats"])
    artifact.sha256, artifact.size_bytes = digest(temp)
    del runner
    artifact.path = _place(temp, work)
    artifact.status = "ok"
    return artifact


def _write(fmt_name, mode, model, temp, work, context):
    if fmt_name == "keras":
        return fmt.write_keras(model, temp)
    if fmt_name == "savedmodel":
        return fmt.write_savedmodel(model, temp)
    if fmt_name == "onnx":
        return fmt.write_onnx(model, temp, context["opset"])
    if "tflite_source" not in context:  # one SavedModel of the TFLite-ready model serves all variants
        ready, notes = fmt.tflite_ready(model)
        source = fmt.write_temp_savedmodel(ready, os.path.join(work, "tflite_source"))
        context["tflite_source"] = (source, notes)
    source, notes = context["tflite_source"]
    if "tflite_refusal" in context:  # the quantized variants need the same ops: no second try
        raise context["tflite_refusal"]
    representative = None
    if mode == "int8":
        representative = verify.calibration_feed(context["calibration"], [t.name for t in model.inputs])
    try:
        converter, more = fmt.write_tflite(source, temp, quantization=mode, representative=representative,
                                           allow_flex=context["allow_flex"], int8_io=context["int8_io"],
                                           model=model)
    except fmt.FlexOpsRequired as refusal:
        context["tflite_refusal"] = refusal
        raise
    return converter, notes + more


def _place(temp, work):
    """Rename a verified temp artifact to its final name (replacing an older one); return its name."""
    out_dir = os.path.dirname(work)
    name = os.path.basename(temp)
    final = os.path.join(out_dir, name)
    if os.path.isdir(final) and not os.path.islink(final):
        os.replace(final, os.path.join(work, f"old-{name}"))  # a directory cannot be renamed over
    os.replace(temp, final)
    return name


def _first_line(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:400] if text else ''}"


def _versions():
    from importlib import metadata

    versions = {}
    for package in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            try:
                versions[package] = metadata.version(f"{package}-cpu")
            except metadata.PackageNotFoundError:
                versions[package] = None
    return versions
