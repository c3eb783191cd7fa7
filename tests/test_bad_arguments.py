"""Bad-argument tests generated from each builder's declared constraints (no hand-kept list)."""

import pytest

import zoo
from zoo import training
from zoo.errors import InvalidParameterError, InvalidTypeError, UnknownNameError

CASES = [
    (name, param, value)
    for name in zoo.list_models()
    for param, constraint in zoo.get_spec(name).constraints.items()
    for value in constraint.invalid_examples
]
TRAINING_CASES = [
    (param, value)
    for param, constraint in training.CONSTRAINTS.items()
    for value in constraint.invalid_examples
]


def _create(name, **params):
    spec = zoo.get_spec(name)
    return zoo.create_model(name, input_shape=spec.example_input_shape, num_outputs=3,
                            task="multiclass" if "multiclass" in spec.tasks else None,
                            compile=False, **params)


@pytest.mark.parametrize("name,param,value", CASES)
def test_declared_constraint_refuses_value(name, param, value):
    with pytest.raises((InvalidParameterError, InvalidTypeError)) as info:
        _create(name, **{param: value})
    message = str(info.value)
    assert f"`{param}` of `{name}`" in message
    assert f"Received: {param}=" in message
    assert "\n" not in message


@pytest.mark.parametrize("param,value", TRAINING_CASES)
def test_training_option_refuses_value(param, value):
    with pytest.raises((InvalidParameterError, InvalidTypeError)) as info:
        _create("mlp", **{param: value})
    assert f"`{param}` of `mlp`" in str(info.value)
    assert "Received:" in str(info.value)


def test_every_family_declares_constraints_with_invalid_examples():
    for name in zoo.list_models():
        constraints = zoo.get_spec(name).constraints
        assert constraints, name
        assert all(c.invalid_examples for c in constraints.values()), name


def test_unknown_model_suggests_the_closest_name():
    with pytest.raises(UnknownNameError, match=r"Unknown model 'resnt'. Did you mean 'resnet'\?"):
        zoo.create_model("resnt", input_shape=(8, 8, 1), num_outputs=10)


def test_unknown_option_name_suggests_the_closest_value():
    with pytest.raises(InvalidParameterError, match=r"Received: optimizer='adan'. Did you mean 'adam'\?"):
        _create("mlp", optimizer="adan")
    with pytest.raises(InvalidParameterError, match=r"Received: activation='rleu'. Did you mean 'relu'\?"):
        _create("mlp", activation="rleu")
    with pytest.raises(InvalidParameterError, match="schedule"):
        _create("mlp", schedule="linear_warmup")


def test_unknown_parameter_name_suggests_the_closest_parameter():
    with pytest.raises(UnknownNameError, match="Did you mean 'dropout_rate'"):
        _create("mlp", dropout=0.5)


def test_input_shape_of_the_wrong_rank_is_refused():
    with pytest.raises(InvalidParameterError, match=r"`input_shape` of `cnn` must have rank 3.*Received: input_shape=\(64,\)"):
        zoo.create_model("cnn", input_shape=(64,), num_outputs=10)
    with pytest.raises(InvalidParameterError, match="`input_shape` of `lstm`"):
        zoo.create_model("lstm", input_shape=(8, 8, 1), num_outputs=10)
    with pytest.raises(InvalidTypeError, match="input_shape"):
        zoo.create_model("mlp", input_shape=(8, -1), num_outputs=10)


def test_num_outputs_is_required_for_multiclass():
    with pytest.raises(InvalidParameterError, match=r"`num_outputs` of `mlp` is required for task 'multiclass'"):
        zoo.create_model("mlp", input_shape=(4,), task="multiclass")
    with pytest.raises(InvalidParameterError, match="`task` of `mlp`"):
        zoo.create_model("mlp", input_shape=(4,), num_outputs=3, task="clustering")


def test_cross_parameter_checks_name_the_field():
    with pytest.raises(InvalidParameterError, match="`num_heads` of `transformer` must divide model_dim=64"):
        zoo.create_model("transformer", input_shape=(12, 3), num_outputs=2, num_heads=5)
    with pytest.raises(InvalidParameterError, match="`filters` of `cnn`"):
        zoo.create_model("cnn", input_shape=(8, 8, 1), num_outputs=2, filters=(8, 8, 8, 8, 8))
    with pytest.raises(InvalidParameterError, match="`blocks_per_stage` of `resnet`"):
        zoo.create_model("resnet", input_shape=(8, 8, 1), num_outputs=2, stage_filters=(8, 16),
                         blocks_per_stage=(1, 1, 1))
    with pytest.raises(InvalidParameterError, match="`unroll` of `lstm` needs a fixed sequence length"):
        zoo.create_model("lstm", input_shape=(None, 3), num_outputs=2, unroll=True)
    with pytest.raises(InvalidParameterError, match="`label_smoothing` applies only to classification"):
        zoo.create_model("mlp", input_shape=(4,), task="regression", label_smoothing=0.1)
