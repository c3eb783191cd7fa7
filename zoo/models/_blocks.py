"""Building blocks shared by the families: dense and convolution blocks, residual block."""

from zoo import training


def layer_options(params):
    """The shared layer options (initializer, regularizer, max-norm) as Dense/Conv kwargs."""
    return training.dense_kwargs(
        activation=params["activation"],
        initializer=params["initializer"],
        regularizer=params["regularizer"],
        regularization=params["regularization"],
        max_norm=params["max_norm"],
    )


def dense_block(x, units, *, name, params, batch_norm=False, dropout_rate=0.0):
    """Dense → (batch norm) → activation → (dropout), with fixed layer names `name_*`."""
    import keras

    x = keras.layers.Dense(units, name=f"{name}_dense", **layer_options(params))(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    x = training.activation_layer(params["activation"], layer_name=f"{name}_act")(x)
    if dropout_rate:
        x = training.dropout_layer(dropout_rate, activation=params["activation"], layer_name=f"{name}_drop")(x)
    return x


def conv_block(x, filters, *, name, params, kernel_size=3, strides=1, batch_norm=True, activate=True):
    """Conv2D → (batch norm) → (activation), 'same' padding."""
    import keras

    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                            use_bias=not batch_norm, name=f"{name}_conv", **layer_options(params))(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    if activate:
        x = training.activation_layer(params["activation"], layer_name=f"{name}_act")(x)
    return x


def residual_block(x, filters, *, name, params, strides=1, batch_norm=True):
    """Two 3×3 convolutions plus a shortcut; a 1×1 projection when the shape changes."""
    import keras

    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv_block(x, filters, name=f"{name}_proj", params=params, kernel_size=1,
                              strides=strides, batch_norm=batch_norm, activate=False)
    x = conv_block(x, filters, name=f"{name}_1", params=params, strides=strides, batch_norm=batch_norm)
    x = conv_block(x, filters, name=f"{name}_2", params=params, batch_norm=batch_norm, activate=False)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return training.activation_layer(params["activation"], layer_name=f"{name}_out")(x)


def dense_head(x, *, units, task, num_outputs, params, dropout_rate=0.0, batch_norm=False):
    """Hidden dense layers then the task's output layer."""
    import keras

    for index, width in enumerate(units):
        x = dense_block(x, width, name=f"head_{index + 1}", params=params,
                        batch_norm=batch_norm, dropout_rate=dropout_rate)
    if not units and dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name="head_drop")(x)
    return training.output_head(x, task=task, num_outputs=num_outputs)
