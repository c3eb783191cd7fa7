"""`Distiller`: knowledge distillation of a teacher classifier into a student (Hinton et al., 2015)."""

import keras
from keras import ops

from zoo._params import Real, check_params
from zoo.errors import InvalidParameterError, InvalidTypeError

# log(clip(p, tiny)) recovers the logits' differences exactly for every probability softmax keeps
# as a normal float32; a coarser floor (1e-7) flattens a confident teacher's small probabilities,
# the "dark knowledge" distillation transfers
_TINY = 1.1754944e-38
CONSTRAINTS = {"temperature": Real(0.0, None, closed="neither"), "alpha": Real(0.0, 1.0)}


def check_models(student, teacher):
    """Both must be built Keras models with one input and one output of the same shape."""
    for role, model in (("student", student), ("teacher", teacher)):
        if not isinstance(model, keras.Model) or not getattr(model, "outputs", None) \
                or len(model.outputs) != 1:
            raise InvalidTypeError(
                f"`{role}` of `Distiller` must be a built Keras classifier with one output. "
                f"Received: {role}={type(model).__name__}"
            )
    student_shape, teacher_shape = tuple(student.outputs[0].shape[1:]), tuple(teacher.outputs[0].shape[1:])
    if student_shape != teacher_shape:
        raise InvalidParameterError(
            f"`teacher` of `Distiller` must have the student's output shape {student_shape}. "
            f"Received: teacher output shape {teacher_shape}"
        )
    student_input, teacher_input = tuple(student.inputs[0].shape[1:]), tuple(teacher.inputs[0].shape[1:])
    if student_input != teacher_input:
        raise InvalidParameterError(
            f"`teacher` of `Distiller` must take the student's input shape {student_input}. "
            f"Received: teacher input shape {teacher_input}"
        )


def _as_class_probabilities(outputs):
    """Softmax outputs as they are; one sigmoid unit as the two-class distribution [1 − p, p]."""
    if outputs.shape[-1] == 1:
        return ops.concatenate([1.0 - outputs, outputs], axis=-1)
    return outputs


def _log_soften(probabilities, temperature):
    """log softmax(logits / T) from probabilities: log p are the logits up to a per-sample constant."""
    logits = ops.log(ops.clip(ops.cast(probabilities, "float32"), _TINY, 1.0))
    return ops.log_softmax(logits / temperature, axis=-1)


@keras.saving.register_keras_serializable(package="zoo")
class Distiller(keras.Model):
    """Trains `student` on α · hard-label loss + (1 − α) · T² · KL(teacher_T ‖ student_T).

    Both models end in the catalog's classification heads (softmax, or one sigmoid unit for
    binary); their probabilities are softened with temperature T through their logarithms. The
    teacher is frozen and runs in inference mode. `call` is the student's prediction, so compiled
    metrics (accuracy) are the student's; `distiller.student` is a plain Functional model that
    saves and exports alone.

    Example:
        >>> student = zoo.create_model("mlp", input_shape=(64,), num_outputs=10, compile=False,
        ...                            hidden_units=(16,))
        >>> distiller = Distiller(student, teacher, temperature=4.0, alpha=0.1)
        >>> distiller.compile(optimizer="adam", metrics=["accuracy"])
        >>> distiller.fit(X_train, y_train, epochs=20)
        >>> distiller.student.save("student.keras")
    """

    def __init__(self, student, teacher, temperature=4.0, alpha=0.1, **kwargs):
        options = check_params("Distiller", CONSTRAINTS, {"temperature": temperature, "alpha": alpha})
        check_models(student, teacher)
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.temperature = options["temperature"]
        self.alpha = options["alpha"]
        self.build(student.inputs[0].shape)

    def build(self, input_shape):
        """Nothing to create: student and teacher are built models (marks the model built)."""

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """The hard-label loss defaults to the one the student's head needs (integer labels)."""
        if loss is None:
            loss = "binary_crossentropy" if self.student.outputs[0].shape[-1] == 1 \
                else "sparse_categorical_crossentropy"
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        hard = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        teacher = _log_soften(_as_class_probabilities(self.teacher(x, training=False)), self.temperature)
        student = _log_soften(_as_class_probabilities(y_pred), self.temperature)
        soft = ops.mean(ops.sum(ops.exp(teacher) * (teacher - student), axis=-1))
        # T² keeps the soft term's gradients on the hard term's scale as T grows (Hinton et al.)
        return self.alpha * hard + (1.0 - self.alpha) * self.temperature**2 * soft

    def get_config(self):
        config = super().get_config()
        config.update({
            "student": keras.saving.serialize_keras_object(self.student),
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "temperature": self.temperature,
            "alpha": self.alpha,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for part in ("student", "teacher"):
            config[part] = keras.saving.deserialize_keras_object(config[part])
        return cls(**config)
