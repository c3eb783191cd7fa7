"""Learning-rate schedules Keras does not ship."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class OneCycleSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle policy: cosine warm-up from max/div to max over `warmup_fraction` of the steps,
    then cosine annealing down to max/final_div."""

    def __init__(self, max_learning_rate, total_steps, warmup_fraction=0.3, div_factor=25.0,
                 final_div_factor=1e4):
        self.max_learning_rate = float(max_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_fraction = float(warmup_fraction)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        total = float(self.total_steps)
        warmup = max(1.0, self.warmup_fraction * total)
        start = self.max_learning_rate / self.div_factor
        end = self.max_learning_rate / self.final_div_factor

        def cosine(low, high, fraction):
            fraction = ops.clip(fraction, 0.0, 1.0)
            return low + (high - low) * 0.5 * (1.0 - ops.cos(math.pi * fraction))

        rising = cosine(start, self.max_learning_rate, step / warmup)
        falling = cosine(self.max_learning_rate, end, (step - warmup) / max(1.0, total - warmup))
        return ops.where(step < warmup, rising, falling)

    def get_config(self):
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "warmup_fraction": self.warmup_fraction,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }
