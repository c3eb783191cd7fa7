"""Images streamed from disk: a folder of class subfolders, a CSV of image paths and labels, or a
`tf.data.Dataset` of (image, label) (written once to PNG files), read with TensorFlow's own
decoders as `tf.data` pipelines (decode, resize, batch, parallel map, prefetch) and never held in
memory as a whole.

A split (`ImageSplit`) is what the search trains on: Keras's `fit`, `evaluate` and `predict` take
it as it is (it is a Keras data adapter, so the `y` and `batch_size` they are handed are its own),
while `len(split)`, `split.shape` and `split[:64]` (decoded `uint8` pixels) work as on an array.
Pixels enter the model as decoded `uint8` at `image_size`; the standardization (each channel's
mean and variance over the training files), any resizing the core model needs and the augmentation
are layers inside it, so the artifacts take the same pixels."""

import contextlib
import hashlib
import os

import numpy as np

from zoo.errors import InvalidParameterError

# what tf.io.decode_image reads; other files in a class folder are skipped and counted
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# an inferred image_size keeps the files' median aspect, its longer side at most this: the default
# search runs on CPUs, where a 128-pixel side already costs 16 times a 32-pixel one
MAX_INFERRED_SIDE = 128
BATCH_SIZE = 32
PROBE_BATCH = 256
IMAGE_COLUMN_SHARE = 0.9  # a CSV column of paths is read as images when this share names image files


# === what a source is ===========================================================================


def is_image_source(source):
    """True for what `load_images` reads: a folder, a CSV with a column of image paths
    (`image_column`), or a `tf.data.Dataset`."""
    if isinstance(source, (str, os.PathLike)):
        if os.path.isdir(source):
            return True
        if os.fspath(source).lower().endswith(".csv") and os.path.isfile(source):
            from zoo.data import read_csv

            return image_column(read_csv(source)) is not None
        return False
    return _is_tf_dataset(source)


def _is_tf_dataset(value):
    module = type(value).__module__
    return module.startswith("tensorflow") and hasattr(value, "element_spec")


def image_column(frame):
    """The first column of strings of which at least IMAGE_COLUMN_SHARE are image file names (by
    extension), or None."""
    for column in frame.columns:
        values = frame[column].dropna()
        if len(values) and values.map(lambda v: isinstance(v, str)).all() and values.str.lower().str.endswith(
                IMAGE_EXTENSIONS).mean() >= IMAGE_COLUMN_SHARE:
            return column
    return None


def is_image_size(value):
    """Whether `value` is two positive integers (height, width): the one rule, for the config's
    `data.image_size` and `load_images` alike."""
    return (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(side, (int, np.integer)) and not isinstance(side, bool) and side > 0
                    for side in value))


def check_image_size(image_size, field="data.image_size"):
    """`image_size` as a (height, width) tuple of positive ints, None left as None."""
    if image_size is None:
        return None
    if not is_image_size(image_size):
        raise InvalidParameterError(
            f"`{field}` must be two positive integers (height, width). Received: {field}={image_size!r}")
    return (int(image_size[0]), int(image_size[1]))


def list_folder(folder):
    """(paths, labels, class names, skipped file count) of a folder with one subfolder per class;
    files without an image extension are skipped and counted."""
    folder = os.fspath(folder)
    classes = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith("."))
    paths, labels, skipped = [], [], 0
    for label, name in enumerate(classes):
        for root, dirs, files in os.walk(os.path.join(folder, name)):
            dirs.sort()
            for file in sorted(files):
                if file.startswith("."):
                    continue
                if file.lower().endswith(IMAGE_EXTENSIONS):
                    paths.append(os.path.join(root, file))
                    labels.append(label)
                else:
                    skipped += 1
    return np.asarray(paths, dtype=object), np.asarray(labels, dtype="int64"), classes, skipped


def read_image_csv(frame, column, target, *, folder, name):
    """(paths resolved against `folder`, labels, rows without a path or label, rows whose path is
    not an image file) of a CSV's image column and its `target`."""
    if target is None or target not in frame.columns:
        raise InvalidParameterError(
            f"`data.target` must name the label column of {name!r} beside its image column "
            f"{column!r} (columns: {', '.join(map(str, frame.columns))}). Received: data.target={target!r}")
    rows = frame[[column, target]].dropna()
    images = rows[column].str.lower().str.endswith(IMAGE_EXTENSIONS).to_numpy()
    paths = np.asarray([p if os.path.isabs(p) else os.path.join(folder, p) for p in rows[column][images]],
                       dtype=object)
    labels = rows[target].to_numpy()[images]
    if labels.dtype == object:
        labels = labels.astype(str)
    return paths, labels, len(frame) - len(rows), int((~images).sum())


# === decoding ===================================================================================


def decode(path, *, image_size, channels):
    """One file's pixels as `uint8` (height, width, channels) at `image_size` (a TensorFlow op:
    the pipeline's and `zoo predict`'s one decoding)."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, dtype=tf.uint8,
                               expand_animations=False)
    return resize_pixels(image, image_size)


def resize_pixels(image, image_size):
    """`uint8` pixels (or 0-255 numbers) bilinearly resized to `image_size` (as Keras's
    `image_dataset_from_directory` does), rounded back to `uint8`."""
    import tensorflow as tf

    image = tf.ensure_shape(image, [None, None, None])
    resized = tf.image.resize(image, image_size, method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def decode_files(paths, *, image_size, channels):
    """(pixels (n, h, w, c) uint8, readable mask): the files that decode, the others left out."""
    import tensorflow as tf

    paths = [os.fspath(p) for p in paths]
    if not paths:
        return np.zeros((0, *image_size, channels), "uint8"), np.zeros(0, bool)
    dataset = tf.data.Dataset.from_tensor_slices((tf.range(len(paths), dtype=tf.int64), paths))
    dataset = dataset.map(lambda i, p: (i, decode(p, image_size=image_size, channels=channels)),
                          num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    found, images = [], []
    for index, batch in dataset.batch(PROBE_BATCH):
        found.append(index.numpy())
        images.append(batch.numpy())
    readable = np.zeros(len(paths), bool)
    if found:
        readable[np.concatenate(found)] = True
    pixels = np.concatenate(images) if images else np.zeros((0, *image_size, channels), "uint8")
    return pixels, readable


def read_pixels(data, shape, *, field="X"):
    """(paths, pixels, unreadable count) of `data` for a model on `shape` (height, width, channels)
    images: an image file, a folder of them (every image file in it and its subfolders, sorted) or
    a CSV with a column of image paths (read relative to it; given as it gives them), each decoded
    and resized as the training files were; unreadable files are left out and counted, and an
    image file that does not decode is refused."""
    path = os.fspath(data)
    found = None
    if os.path.isdir(path):
        paths = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names
                       if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."))
    elif path.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(path):
        paths = [path]
    elif path.lower().endswith(".csv") and os.path.isfile(path):
        from zoo.data import read_csv

        frame = read_csv(path)
        column = image_column(frame)
        if column is None:
            raise InvalidParameterError(
                f"`{field}` CSV has no column of image paths ({', '.join(IMAGE_EXTENSIONS)}) for a model "
                f"on images. Received: {field}={path!r} with columns {', '.join(map(str, frame.columns))}")
        folder = os.path.dirname(os.path.abspath(path))
        paths = list(frame[column].dropna())
        found = [p if os.path.isabs(p) else os.path.join(folder, p) for p in paths]
    else:
        raise InvalidParameterError(
            f"`{field}` must be an image file ({', '.join(IMAGE_EXTENSIONS)}), a folder of them or a CSV "
            f"of their paths for a model on images. Received: {field}={path!r}")
    if not paths:
        raise InvalidParameterError(f"`{field}` folder holds no image files. Received: {field}={path!r}")
    pixels, readable = decode_files(found or paths, image_size=tuple(shape[:2]), channels=int(shape[2]))
    if not readable.any():
        what = "is not a readable image" if paths == [path] else f"holds no readable image ({len(paths)} files)"
        raise InvalidParameterError(f"`{field}` {what}. Received: {field}={path!r}")
    return [p for p, ok in zip(paths, readable) if ok], pixels, int((~readable).sum())


def probe_files(paths):
    """Each file decoded once, in a streamed pass: (readable mask, sizes (n, 3) as height, width,
    channels, per-channel pixel sums and sums of squares (n, 4), zero-padded)."""
    import tensorflow as tf

    def probe(index, path):
        image = tf.io.decode_image(tf.io.read_file(path), dtype=tf.uint8, expand_animations=False)
        pixels = tf.cast(image, tf.float32)
        pad = [[0, 4 - tf.shape(image)[2]]]
        return (index, tf.shape(image), tf.pad(tf.reduce_sum(pixels, axis=[0, 1]), pad),
                tf.pad(tf.reduce_sum(tf.square(pixels), axis=[0, 1]), pad))

    count = len(paths)
    readable, sizes = np.zeros(count, bool), np.zeros((count, 3), "int64")
    sums, squares = np.zeros((count, 4)), np.zeros((count, 4))
    dataset = tf.data.Dataset.from_tensor_slices((tf.range(count, dtype=tf.int64), [os.fspath(p) for p in paths]))
    dataset = dataset.map(probe, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors().batch(PROBE_BATCH)
    for index, shape, total, square in dataset:
        index = index.numpy()
        readable[index], sizes[index] = True, shape.numpy()
        sums[index], squares[index] = total.numpy(), square.numpy()
    return readable, sizes, sums, squares


def infer_image_size(sizes):
    """The files' median (height, width), scaled down to MAX_INFERRED_SIDE on the longer side."""
    height, width = (float(np.median(sizes[:, 0])), float(np.median(sizes[:, 1])))
    scale = min(1.0, MAX_INFERRED_SIDE / max(height, width))
    return (max(1, int(round(height * scale))), max(1, int(round(width * scale))))


def channel_statistics(sizes, sums, squares, channels):
    """(mean, variance) of each of `channels` channels over the files' pixels, a grey file counting
    for each colour channel (as decoding it in colour replicates it) and alpha left out."""
    pixels = sizes[:, 0] * sizes[:, 1]
    native = sizes[:, 2]
    take = np.where(native[:, None] >= 3, np.arange(channels)[None, :], 0) if channels == 3 else np.zeros(
        (len(sizes), 1), "int64")
    total = np.take_along_axis(sums, take, axis=1).sum(axis=0)
    square = np.take_along_axis(squares, take, axis=1).sum(axis=0)
    count = max(float(pixels.sum()), 1.0)
    mean = total / count
    variance = np.maximum(square / count - mean ** 2, 0.0)
    return [float(m) for m in mean], [float(v) if v > 1e-6 else 1.0 for v in variance]


# === splits =====================================================================================


def _data_adapter_base():
    """Keras's data-adapter base class (private to Keras 3, keras.src): `fit`, `evaluate` and
    `predict` use an object of it as it is. The one place zoo reaches for it."""
    from keras.src.trainers.data_adapters.data_adapter import DataAdapter

    return DataAdapter


class _FileSource:
    """Image files: each element decoded from its path."""

    def __init__(self, paths, *, image_size, channels):
        self.paths, self.image_size, self.channels = np.asarray(paths, dtype=object), image_size, channels

    def elements(self, indices, labels, *, shuffle, seed):
        import tensorflow as tf

        paths = tf.constant([os.fspath(p) for p in self.paths[indices]], dtype=tf.string)
        parts = (paths,) if labels is None else (paths, labels)
        dataset = tf.data.Dataset.from_tensor_slices(parts)
        if shuffle:  # the paths, not the pixels: the whole split shuffles for a few bytes a file
            dataset = dataset.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True)
        size, channels = self.image_size, self.channels

        def load(path, *label):
            image = decode(path, image_size=size, channels=channels)
            return (image, *label) if label else image

        return dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)

    def __getstate__(self):
        return {key: value for key, value in self.__dict__.items() if key != "folder"}

    def fingerprint(self, indices):
        digest = hashlib.sha256()
        for path in self.paths[indices]:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()


class _Split:
    """One split of an image source: its files (or stream elements) and labels, streamed as
    batches of `uint8` pixels; shaped like the array it stands for, `(n, height, width, channels)`.

    Keras's `fit`/`evaluate`/`predict` take it directly (batches of `batch_size`; a `shuffle` split,
    the training one, is reshuffled every epoch from `seed`); `split[i]`, `split[a:b]` and
    `split[indices]` decode those images to a numpy array, as does `np.asarray(split)` (the whole
    split: only for small ones); `subset(indices)` is the split of some of its files.
    """

    dtype = np.dtype("uint8")
    ndim = 4

    def __init__(self, source, indices, labels=None, *, shuffle=False, batch_size=BATCH_SIZE, seed=0,
                 class_weight=None):
        self.source, self.indices = source, np.asarray(indices, dtype="int64")
        self.labels = None if labels is None else np.asarray(labels)
        self.shuffle, self.seed, self._batch_size = shuffle, int(seed), int(batch_size)
        self.class_weight = dict(class_weight) if class_weight else None

    # --- like an array -------------------------------------------------------------------------
    def __len__(self):
        return len(self.indices)

    @property
    def shape(self):
        return (len(self), *self.source.image_size, self.source.channels)

    @property
    def paths(self):
        """The files of this split (None for a `tf.data` source)."""
        return self.source.paths[self.indices] if isinstance(self.source, _FileSource) else None

    def subset(self, rows, *, shuffle=None):
        """The split of `rows` (positions in this split)."""
        rows = np.arange(len(self))[rows]
        return type(self)(self.source, self.indices[rows], None if self.labels is None else self.labels[rows],
                          shuffle=self.shuffle if shuffle is None else shuffle, batch_size=self._batch_size,
                          seed=self.seed, class_weight=self.class_weight)

    def __getitem__(self, rows):
        if isinstance(rows, (int, np.integer)):
            return self.subset([int(rows)]).pixels()[0]
        return self.subset(rows, shuffle=False).pixels()

    def pixels(self):
        """Every image of the split, decoded, in order: (n, height, width, channels) uint8."""
        batches = [batch for batch in self.pipeline(labels=False, shuffle=False).as_numpy_iterator()]
        return np.concatenate(batches) if batches else np.zeros(self.shape, "uint8")

    def __array__(self, dtype=None, copy=None):
        pixels = self.pixels()
        return pixels if dtype is None else pixels.astype(dtype)

    def fingerprint(self):
        """A hash of the split's files (path, size, modification time) and labels: what a resumed
        search checks instead of the pixels."""
        labels = b"" if self.labels is None else np.ascontiguousarray(self.labels).tobytes()
        return hashlib.sha256(self.source.fingerprint(self.indices).encode() + labels).hexdigest()

    def downscaled(self, max_side, *, limit=None, seed=0):
        """float32 pixels block-averaged to at most `max_side` per side, flattened (a baseline's
        inputs), computed batch by batch; with `limit`, of a seeded stratified subset of at most
        that many images. Returns (features, labels)."""
        split = self
        if limit is not None and len(self) > limit:
            from sklearn.model_selection import train_test_split

            rows, _ = train_test_split(np.arange(len(self)), train_size=limit, random_state=seed,
                                       stratify=self.labels)
            split = self.subset(np.sort(rows), shuffle=False)
        height, width, channels = self.shape[1:]
        factor_h, factor_w = -(-height // max_side), -(-width // max_side)
        height, width = height - height % factor_h, width - width % factor_w
        parts = []
        for batch in split.pipeline(labels=False, shuffle=False).as_numpy_iterator():
            blocks = batch[:, :height, :width].astype("float32").reshape(
                len(batch), height // factor_h, factor_h, width // factor_w, factor_w, channels)
            parts.append(blocks.mean(axis=(2, 4)).reshape(len(batch), -1))
        return np.concatenate(parts), split.labels

    # --- as a stream ----------------------------------------------------------------------------
    def pipeline(self, *, labels=True, shuffle=None, batch_size=None):
        """The split as a `tf.data.Dataset` of (pixels, label) batches (pixels alone without
        labels): decoded in parallel, batched, prefetched."""
        import tensorflow as tf

        with_labels = labels and self.labels is not None
        dataset = self.source.elements(self.indices, self.labels if with_labels else None,
                                       shuffle=self.shuffle if shuffle is None else shuffle, seed=self.seed)
        dataset = dataset.batch(batch_size or self._batch_size)
        if with_labels and self.class_weight:  # (pixels, label, the label's weight), as Keras weighs
            weights = np.ones(int(self.labels.max()) + 1, "float32")
            for label, weight in self.class_weight.items():
                if int(label) < len(weights):
                    weights[int(label)] = weight
            weights = tf.constant(weights)
            dataset = dataset.map(lambda x, y: (x, y, tf.gather(weights, tf.cast(y, tf.int32))))
        return dataset.prefetch(tf.data.AUTOTUNE)

    def batched(self, batch_size, *, class_weight=None):
        """This split streamed in batches of `batch_size`, its labels weighed by `class_weight`
        ({label index: weight}) in training: what `fit` would do with those arguments, which Keras
        does not hand to a data adapter."""
        return type(self)(self.source, self.indices, self.labels, shuffle=self.shuffle,
                          batch_size=batch_size, seed=self.seed, class_weight=class_weight)

    # --- Keras's data-adapter interface ---------------------------------------------------------
    def get_tf_dataset(self):
        return self.pipeline()

    def get_numpy_iterator(self):
        return self.pipeline().as_numpy_iterator()

    get_jax_iterator = get_numpy_iterator

    def get_torch_dataloader(self):
        raise NotImplementedError("an ImageSplit streams through tf.data (the TensorFlow backend)")

    @property
    def num_batches(self):
        return -(-len(self) // self._batch_size)

    @property
    def batch_size(self):
        return self._batch_size

    @property
    def has_partial_batch(self):
        return len(self) % self._batch_size != 0

    @property
    def partial_batch_size(self):
        return len(self) % self._batch_size or None


def split_class():
    """`ImageSplit`: a split (`_Split`) that is also a Keras data adapter; defined on first use,
    so that reading this module imports no TensorFlow (`zoo.images.ImageSplit` defines it too, as
    unpickling a split in a search's worker process does)."""
    if "ImageSplit" not in globals():
        globals()["ImageSplit"] = type("ImageSplit", (_Split, _data_adapter_base()), {
            "__module__": __name__, "__qualname__": "ImageSplit", "__doc__": _Split.__doc__})
    return globals()["ImageSplit"]


def __getattr__(name):
    if name == "ImageSplit":
        return split_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# === the model's side ===========================================================================


class ImagePreprocessor:
    """What an image model carries in front of the catalog model: pixels in as decoded `uint8`
    at `image_size`, standardized by each channel's training mean and variance (for a core that
    takes raw pixels, a pretrained backbone, cast to float only), resized bilinearly when the
    core's input has another size."""

    def __init__(self, *, image_size, channels, mean, variance):
        self.image_size, self.channels = tuple(image_size), int(channels)
        self.mean, self.variance = list(mean), list(variance)

    @property
    def feature_shape(self):
        """The shape the catalog model sees."""
        return (*self.image_size, self.channels)

    def compose(self, core, *, target_stats=None, class_names=None):
        """`core` behind the pixel preprocessing, before the target unscaling and class names."""
        import keras

        from zoo.layers.preprocessing import ClassNames, Standardize
        from zoo.models.backbone import takes_pixels
        from zoo.preprocessing import unscale_target

        inputs = keras.Input(self.feature_shape, dtype="uint8", name="pixels")
        if takes_pixels(core):
            x = keras.layers.Rescaling(1.0, name="to_float")(inputs)
        else:
            x = Standardize(self.mean, self.variance, name="standardize")(inputs)
        wanted = tuple(core.inputs[0].shape[1:3])
        if wanted != self.image_size and None not in wanted:
            x = keras.layers.Resizing(*wanted, interpolation="bilinear", name="resize")(x)
        x = core(x)
        after = [unscale_target(target_stats)] if target_stats is not None else []
        if class_names:
            after.append(ClassNames([str(c) for c in class_names], name="class_names"))
        for layer in after:  # float32 under mixed precision too: the target in its units, exactly
            layer.dtype_policy = "float32"
            x = layer(x)
        model = keras.Model(inputs, x, name=core.name)
        from zoo.transfer import carry_fine_tuning

        return carry_fine_tuning(core, model)

    def to_dict(self):
        """The artifacts' input, for the export manifest and `zoo predict`."""
        height, width = self.image_size
        return {"kind": "image", "image_size": [height, width], "channels": self.channels,
                "color": "RGB" if self.channels == 3 else "grayscale", "dtype": "uint8",
                "input": f"decoded {'RGB' if self.channels == 3 else 'grayscale'} pixels 0-255 as uint8, "
                         f"shape (batch, {height}, {width}, {self.channels}): each file decoded "
                         f"(PNG, JPEG, BMP, GIF's first frame) and resized bilinearly to "
                         f"{height}x{width}, rounded to uint8 (zoo predict does it)",
                "standardization": {"mean": self.mean, "variance": self.variance}}


# === mixed precision ============================================================================

MIXED_PRECISION = "mixed_float16"


def gpu_present():
    """Whether TensorFlow sees a GPU."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def is_image_compose(compose):
    """Whether `compose` puts an image model's pixel preprocessing around a core: an image
    Dataset's `compose`, or an `ImagePreprocessor`'s."""
    owner = getattr(compose, "__self__", None)
    return isinstance(getattr(owner, "preprocessor", owner), ImagePreprocessor)


@contextlib.contextmanager
def mixed_precision(compose):
    """While the block builds a model for `compose` (see `is_image_compose`) and TensorFlow sees
    a GPU: Keras's `mixed_float16` policy (float16 compute, float32 variables), then the previous
    policy again. A layer keeps the policy it was built under, so the model trains in it; the
    catalog's output layer and what `ImagePreprocessor.compose` puts after the core stay float32,
    and `compile` wraps the optimizer in loss scaling. On CPU, for other data, or under a policy
    the user set, nothing changes. Yields the policy in force."""
    import keras

    previous = keras.config.dtype_policy()
    if previous.name != "float32" or not is_image_compose(compose) or not gpu_present():
        yield previous.name
        return
    keras.config.set_dtype_policy(MIXED_PRECISION)
    try:
        yield MIXED_PRECISION
    finally:
        keras.config.set_dtype_policy(previous)


def float32_model(model):
    """`model` itself when neither it nor its layers (the catalog model among them) was built
    under a mixed policy; else its float32 twin, the same weights in layers built anew under the
    float32 policy: what is saved and exported after a mixed precision training (TFLite builtins
    compute no float16, and the artifacts are measured against the Keras model in float32)."""
    import keras

    if not any(layer.dtype_policy.name.startswith("mixed_") for layer in (model, *model.layers)):
        return model
    config = keras.saving.serialize_keras_object(model)
    _to_float32(config)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        twin = keras.saving.deserialize_keras_object(config)
    finally:
        keras.config.set_dtype_policy(previous)
    twin.set_weights(model.get_weights())
    return twin


def _to_float32(config):
    """Rename every mixed dtype policy in a serialized model to float32, in place."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" and config["config"].get("name", "").startswith("mixed_"):
            config["config"]["name"] = "float32"
        for value in config.values():
            _to_float32(value)
    elif isinstance(config, list):
        for value in config:
            _to_float32(value)


# === loading ====================================================================================


def load_images(source, *, target=None, image_size=None, task=None, test_size=0.2, val_size=0.1,
                seed=0, field="data.source", frame=None):
    """A `zoo.data.Dataset` of streamed image splits from a folder of class subfolders, a CSV of
    image paths (`source`, or its rows in `frame`, with its label column `target`) or a
    `tf.data.Dataset` of (image, label); `field` names the source in messages (`X` for AutoModel)."""
    image_size = check_image_size(image_size)
    if _is_tf_dataset(source):
        return _from_stream(source, image_size=image_size, task=task, test_size=test_size,
                            val_size=val_size, seed=seed)
    source = os.fspath(source)
    name = os.path.basename(os.path.normpath(source))
    notes = []
    if frame is None and not os.path.isdir(source):
        from zoo.data import read_csv

        frame = read_csv(source)
    if frame is not None:
        column = image_column(frame)
        paths, labels, missing, skipped = read_image_csv(
            frame, column, target, folder=os.path.dirname(os.path.abspath(source)), name=name)
        notes.append(f"images: the paths in column {column!r}, labels in {target!r}"
                     + (f" ({missing} rows without one dropped)" if missing else ""))
    else:
        paths, indices, classes, skipped = list_folder(source)
        if len(classes) < 2 and len(paths):
            raise InvalidParameterError(
                f"`{field}` must hold at least 2 classes (one subfolder of images each). Received: "
                f"1 class {classes[0]!r} in {source!r}")
        labels = np.asarray(classes, dtype=object)[indices].astype(str) if len(paths) else indices
    if not len(paths):
        raise InvalidParameterError(
            f"`{field}` holds no image files ({', '.join(IMAGE_EXTENSIONS)}) in class subfolders. "
            f"Received: {field}={source!r}")
    readable, sizes, sums, squares = probe_files(paths)
    unreadable = paths[~readable]
    if skipped or len(unreadable):
        example = f", e.g. {os.path.relpath(unreadable[0], source if frame is None else os.path.dirname(source))!r}" \
            if len(unreadable) else ""
        notes.append(f"skipped {skipped + len(unreadable)} files: {skipped} without an image extension, "
                     f"{len(unreadable)} unreadable{example}")
    if not readable.any():
        raise InvalidParameterError(
            f"`{field}` holds no readable image: all {len(paths)} files failed to decode. Received: {field}={source!r}")
    paths, labels, sizes, sums, squares = (a[readable] for a in (paths, labels, sizes, sums, squares))
    if frame is None and len(np.unique(labels)) < 2:
        raise InvalidParameterError(
            f"`{field}` must hold at least 2 classes with readable images. Received: only {labels[0]!r} in {source!r}")
    source_files = _FileSource(paths, image_size=None, channels=None)
    return _dataset(source_files, labels, sizes, sums, squares, image_size=image_size, task=task,
                    test_size=test_size, val_size=val_size, seed=seed, name=name, notes=notes)


def _dataset(source, labels, sizes, sums, squares, *, image_size, task, test_size, val_size, seed,
             name, notes):
    """The Dataset of a probed source: task, seeded stratified split by file, the statistics of
    the training files, the inferred image size."""
    from zoo.data import Dataset, _encode_labels, infer_task, split_indices, task_note
    from zoo.preprocessing import target_stats

    resolved = infer_task(labels, task)
    note = task_note(labels, resolved, task is not None)
    y, class_names, stratify = _encode_labels(labels, resolved)
    train, val, test = split_indices(len(y), stratify=stratify, test_size=test_size, val_size=val_size,
                                     seed=seed)
    channels = 1 if np.all(sizes[:, 2] <= 2) else 3
    if image_size is None:
        image_size = infer_image_size(sizes)
        notes.append(f"data.image_size inferred: {image_size[0]}x{image_size[1]} (the files' median "
                     f"size{', its longer side at most ' + str(MAX_INFERRED_SIDE) if max(np.median(sizes[:, :2], axis=0)) > MAX_INFERRED_SIDE else ''}); "
                     f"set data.image_size to change it")
    source.image_size, source.channels = image_size, channels
    mean, variance = channel_statistics(sizes[train], sums[train], squares[train], channels)
    preprocessor = ImagePreprocessor(image_size=image_size, channels=channels, mean=mean, variance=variance)
    counts = ", ".join(f"{c} {n}" for c, n in zip(class_names, np.bincount(y))) if class_names else ""
    notes.insert(0, f"images: {len(y)} in {len(class_names or [])} classes ({counts}), "
                    f"{'RGB' if channels == 3 else 'grayscale'}, streamed from disk at "
                    f"{image_size[0]}x{image_size[1]}" if class_names else f"images: {len(y)}")
    if note:
        notes.append(note)
    splits = [split_class()(source, rows, y[rows], shuffle=part == "train", seed=seed)
              for part, rows in (("train", train), ("val", val), ("test", test))]
    num_outputs = 1 if resolved in ("binary", "regression") else len(class_names)
    return Dataset(splits[0], y[train], splits[1], y[val], splits[2], y[test], task=resolved,
                   num_outputs=num_outputs, class_names=class_names, name=name, preprocessor=preprocessor,
                   target_stats=target_stats(y[train]) if resolved == "regression" else None,
                   notes=notes)


def _from_stream(dataset, *, image_size, task, test_size, val_size, seed):
    """A `tf.data.Dataset` of (image, label), batched or not, written once to PNG files in a
    temporary folder (one streamed pass; removed with the Dataset), then read as files are: the
    splits stream from disk and travel to a search's worker processes as paths. An element that
    fails to read (a corrupted file in Keras's own `image_dataset_from_directory` fails its whole
    batch) is skipped and counted."""
    import tempfile

    import tensorflow as tf

    class_names = getattr(dataset, "class_names", None)  # keras.utils.image_dataset_from_directory's
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2 or spec[0].shape.rank not in (2, 3, 4):
        raise InvalidParameterError(
            f"`X` as a tf.data.Dataset must yield (image, label) pairs, or batches of them. Received: "
            f"elements {spec}")
    batched = spec[0].shape.rank == 4 or (spec[0].shape.rank == 3 and spec[1].shape.rank == 1
                                          and spec[0].shape[-1] not in (1, 3, 4))
    one_hot = spec[1].shape.rank == (2 if batched else 1)

    def to_png(image):
        image = image[..., None] if image.shape.rank == 2 else image
        return tf.io.encode_png(tf.cast(tf.clip_by_value(tf.round(tf.cast(image, tf.float32)), 0.0, 255.0), tf.uint8))

    def encode(images, labels):
        labels = tf.argmax(labels, axis=-1, output_type=tf.int64) if one_hot else labels
        if not batched:
            images, labels = images[None], labels[None]
        return tf.map_fn(to_png, images, fn_output_signature=tf.string), labels

    folder = tempfile.TemporaryDirectory(prefix="zoo_images_")
    paths, labels, read = [], [], 0  # elements (batches) read
    for pngs, values in dataset.map(encode).ignore_errors().as_numpy_iterator():
        read += 1
        for png, label in zip(pngs, values):
            path = os.path.join(folder.name, f"{len(paths):08d}.png")
            with open(path, "wb") as handle:
                handle.write(png)
            paths.append(path)
            labels.append(label.decode() if isinstance(label, bytes) else label)
    skipped = max(int(dataset.cardinality()) - read, 0)  # unknown (negative) cardinality: not counted
    if not paths:
        raise InvalidParameterError("`X` as a tf.data.Dataset holds no readable images. Received: an "
                                    "empty dataset, or one whose every element failed to read")
    labels = np.asarray(labels)
    if class_names and np.issubdtype(labels.dtype, np.integer):
        labels = np.asarray(class_names, dtype=object)[labels].astype(str)
    paths = np.asarray(paths, dtype=object)
    readable, sizes, sums, squares = probe_files(paths)
    source = _FileSource(paths, image_size=None, channels=None)
    source.folder = folder  # the files live as long as the splits do (not pickled: see __getstate__)
    notes = [f"images: the tf.data.Dataset's {len(paths)} images written once as PNG files to "
             f"{folder.name}, streamed from there"]
    if skipped:
        notes.append(f"skipped {skipped} {'batch(es)' if batched else 'element(s)'} of the tf.data.Dataset "
                     f"that failed to read (a corrupted file fails its whole batch)")
    return _dataset(source, labels, sizes, sums, squares, image_size=image_size, task=task,
                    test_size=test_size, val_size=val_size, seed=seed, name="tf.data.Dataset", notes=notes)
