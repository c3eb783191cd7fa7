"""Artifacts of a table model that take the raw columns: the codes model behind the artifact encoder
(category lookups inside), verified on raw rows: the given codes rows decoded, plus a row of unseen
categories and a row with every column missing."""

import numpy as np

from zoo.errors import InvalidParameterError

INPUTS = ("raw", "codes")
VERIFIED_ON = ("the verification rows' codes as raw values, plus a row of categories outside every "
               "vocabulary and a row with every column missing")


def check_inputs(inputs):
    if inputs not in INPUTS:
        raise InvalidParameterError(
            f"`inputs` must be 'raw' (the artifacts take the raw columns) or 'codes' (the codes "
            f"matrix, for targets that cannot hold a string table). Received: inputs={inputs!r}")
    return inputs


def takes_codes(model, tabular):
    """True when `model` takes this table's codes matrix: one float input, one column per feature."""
    width = len(tabular["codes"])
    return (len(model.inputs) == 1 and tuple(model.inputs[0].shape[1:]) == (width,)
            and "float" in str(model.inputs[0].dtype))


def prepare(model, preprocessing, inputs, *, samples, labels, representative_data):
    """(model, samples, labels, representative_data, preprocessing) to export: for a table model on
    codes with `inputs="raw"`, the model on raw inputs (`zoo.preprocessing.build_artifact_encoder`
    before it) and the data as raw rows; everything as it came otherwise. The preprocessing notes
    say which inputs the artifacts take and, for raw ones, document each."""
    from export import verify

    inputs = check_inputs(inputs)
    tabular = (preprocessing or {}).get("tabular")
    if tabular is None:
        return model, samples, labels, representative_data, preprocessing
    preprocessing = dict(preprocessing, inputs=inputs)
    if inputs == "codes" or not takes_codes(model, tabular):
        return model, samples, labels, representative_data, preprocessing
    from zoo.preprocessing import (
        artifact_input_specs,
        artifact_inputs_from_codes,
        unseen_and_missing_rows,
    )

    def decoded(data, field):
        codes = verify.as_input_arrays(data, model, field)[0]
        return artifact_inputs_from_codes(tabular, codes)

    calibration = None if representative_data is None else decoded(representative_data, "representative_data")
    if samples is not None:
        rows = decoded(samples, "samples")
    else:
        labels = None
        rows = calibration if calibration is not None else decoded(verify.generated_inputs(model)[0], "samples")
    edges = unseen_and_missing_rows(tabular)
    rows = {name: np.concatenate([values[:verify.MAX_SAMPLES - len(edges[name])], edges[name]])
            for name, values in rows.items()}
    preprocessing["tabular"] = dict(tabular, inputs=artifact_input_specs(tabular))
    preprocessing["verified_on"] = VERIFIED_ON
    return on_raw_inputs(model, tabular), rows, labels, calibration, preprocessing


def on_raw_inputs(model, tabular):
    """`model` (on codes) behind the artifact encoder: one model on the raw columns."""
    import keras

    from zoo.preprocessing import build_artifact_encoder

    encoder = build_artifact_encoder(tabular)
    return keras.Model(encoder.input, model(encoder.output), name=model.name)
