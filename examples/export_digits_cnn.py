"""Train the digits CNN briefly, export it to every format with quantized TFLite variants, and print
what each artifact measured against Keras (parity, accuracy, size, batch-1 latency).

    .venv/bin/python examples/export_digits_cnn.py [OUT_DIR]
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import export  # noqa: E402
import zoo  # noqa: E402
from zoo.data import load_dataset  # noqa: E402


def main(out_dir="out/digits_cnn_export"):
    data = load_dataset("digits", shape="image")
    model = zoo.create_model("cnn", input_shape=data.input_shape, num_outputs=data.num_outputs)
    model.fit(data.X_train, data.y_train, epochs=10, batch_size=32, verbose=0)
    manifest = export.export_model(model, out_dir, quantize=("float16", "dynamic", "int8"),
                                   representative_data=data.X_train, samples=data.X_test,
                                   labels=data.y_test)
    print(f"keras model(x): accuracy {manifest.reference['accuracy'][0]:.4f}, "
          f"batch-1 {manifest.reference['latency_ms']['batch_1']:.3f} ms")
    for artifact in manifest.artifacts:
        if not artifact.ok:
            print(f"{artifact.name:15} {artifact.status}: {artifact.error}")
            continue
        output = artifact.parity["outputs"][0]
        print(f"{artifact.name:15} {artifact.size_bytes / 1024:8.1f} KiB  max|err| {output['max_abs_error']:.2e}  "
              f"accuracy {output['accuracy']:.4f}  batch-1 {artifact.latency_ms['batch_1']:.3f} ms")
    print(f"sha256 check: {export.check_manifest(out_dir) or 'all artifacts match the manifest'}")
    return 0 if manifest.ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
