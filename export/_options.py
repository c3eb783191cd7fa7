"""Export options: the formats, quantization modes and opsets, and their checks (no TensorFlow)."""


from zoo._paths import check_writable_dir
from zoo.errors import InvalidParameterError, InvalidTypeError, unknown_name

FORMATS = ("keras", "savedmodel", "tflite", "onnx")
QUANTIZATIONS = ("float16", "dynamic", "int8")
# tf2onnx's tested range ("We support and test ONNX opset-14 to opset-18"); a test keeps the upper
# bound equal to the newest opset tf2onnx maps to an IR version.
MIN_OPSET, MAX_OPSET = 14, 18


def parse_names(value, *, field, choices, kind, allow_empty):
    """A tuple of known names from a comma-separated string or a sequence, duplicates dropped."""
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        names = [item.strip() for item in value]
    else:
        raise InvalidTypeError(
            f"`{field}` must be a comma-separated string or a list of names. Received: {field}={value!r}"
        )
    for name in names:
        if name not in choices:
            raise unknown_name(kind, name, choices)
    if not names and not allow_empty:
        raise InvalidParameterError(
            f"`{field}` must name at least one of {', '.join(choices)}. Received: {field}={value!r}"
        )
    return tuple(dict.fromkeys(names))


def check_options(formats, quantize, opset, *, has_representative_data):
    """Validate the format list, quantization modes and opset; return (formats, quantize, opset)."""
    formats = parse_names(formats, field="formats", choices=FORMATS, kind="export format",
                          allow_empty=False)
    quantize = parse_names(quantize, field="quantize", choices=QUANTIZATIONS,
                           kind="quantization mode", allow_empty=True)
    if quantize and "tflite" not in formats:
        raise InvalidParameterError(
            f"`quantize` applies to the tflite format, which is not among the formats "
            f"{', '.join(formats)}. Received: quantize={','.join(quantize)!r}"
        )
    if "int8" in quantize and not has_representative_data:
        raise InvalidParameterError(
            "`quantize` 'int8' needs representative data to calibrate activation ranges "
            "(representative_data=..., or `--data` on the command line). Received: representative_data=None"
        )
    if opset is not None:
        if isinstance(opset, bool) or not isinstance(opset, int):
            raise InvalidTypeError(f"`opset` must be an integer or None. Received: opset={opset!r}")
        if not MIN_OPSET <= opset <= MAX_OPSET:
            raise InvalidParameterError(
                f"`opset` must be in [{MIN_OPSET}, {MAX_OPSET}], the ONNX opsets tf2onnx supports. "
                f"Received: opset={opset}"
            )
    return formats, quantize, opset


def check_out_dir(out_dir):
    """Refuse an output directory that is a file or cannot be written; leave nothing behind."""
    return check_writable_dir(out_dir, "out_dir")
