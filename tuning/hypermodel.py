"""`ZooHyperModel`: a catalog model (or a choice of families) as a Keras Tuner `HyperModel`."""

import keras_tuner as kt

import zoo
from zoo import training
from zoo.errors import InvalidParameterError, unknown_name

FAMILY_HP = "family"


class ZooHyperModel(kt.HyperModel):
    """Builds catalog models from their search spaces plus fixed params.

    With several `families`, the family is itself a hyperparameter and each family's space sits
    in a conditional scope on it. Training hyperparameters (optimizer, learning rate) are tuned
    unless fixed in `params` or `tune_training=False`; the batch size is a fit-time
    hyperparameter owned by `fit`.

    Example:
        >>> hypermodel = ZooHyperModel(["mlp", "cnn"], input_shape=(8, 8, 1), num_outputs=10,
        ...                            task="multiclass")
    """

    def __init__(self, families, *, input_shape, num_outputs, task, params=None,
                 batch_sizes=(32,), tune_training=True):
        super().__init__(name="zoo")
        if isinstance(families, str):
            families = [families]
        families = list(families)
        for family in families:
            zoo.get_spec(family)  # unknown names get the did-you-mean error
            if task not in zoo.get_spec(family).tasks:
                raise InvalidParameterError(
                    f"`model.families` entry '{family}' does not support task '{task}'. "
                    f"Received: families={families}"
                )
        if len(set(families)) != len(families):
            raise InvalidParameterError(f"`model.families` has duplicates. Received: families={families}")
        self.families = families
        self.input_shape = tuple(input_shape)
        self.num_outputs = num_outputs
        self.task = task
        self.params = dict(params or {})
        self.batch_sizes = list(batch_sizes)
        self.tune_training = tune_training
        for family in families:  # fixed params are checked once, up front
            own = {k: v for k, v in self.params.items()
                   if k in zoo.get_spec(family).constraints or k in training.CONSTRAINTS}
            zoo._registry.check_build_args(family, input_shape=self.input_shape,
                                           num_outputs=num_outputs, task=task, **own)
        known = set(training.CONSTRAINTS).union(*(zoo.get_spec(f).constraints for f in families))
        for key in self.params:
            if key not in known:
                raise unknown_name(f"parameter of `model.params` for {', '.join(families)}", key, known)

    def declare(self, hp):
        """Register the hyperparameters and return `(family, create_model kwargs)`."""
        family = self.families[0]
        if len(self.families) > 1:
            family = hp.Choice(FAMILY_HP, self.families, default=self.families[0])
        spec = zoo.get_spec(family)
        if len(self.families) > 1:
            with hp.conditional_scope(FAMILY_HP, [family]):
                params = spec.space(hp, family)
        else:
            params = spec.space(hp, family)
        if self.tune_training:
            params.update(training.training_space(hp, fixed=self.params))
        params.update({k: v for k, v in self.params.items()
                       if k in spec.constraints or k in training.CONSTRAINTS})
        return family, params

    def declare_hyperparameters(self, hp):
        self.declare(hp)
        if len(self.batch_sizes) > 1:
            hp.Choice("batch_size", self.batch_sizes, default=self.batch_sizes[0])

    def build(self, hp):
        family, params = self.declare(hp)
        return zoo.create_model(family, input_shape=self.input_shape, num_outputs=self.num_outputs,
                                task=self.task, **params)

    def fit(self, hp, model, *args, **kwargs):
        batch_size = self.batch_sizes[0]
        if len(self.batch_sizes) > 1:
            batch_size = hp.Choice("batch_size", self.batch_sizes, default=self.batch_sizes[0])
        kwargs.setdefault("batch_size", batch_size)
        return model.fit(*args, **kwargs)

    def family_of(self, hp_values):
        return hp_values.get(FAMILY_HP, self.families[0])
