"""Trains a tiny Keras model with Horovod (Gloo) and saves each rank's weights.

Every rank starts from different random weights and sees different data, so the ranks
can only end with identical weights if the initial broadcast and the gradient
all-reduce both worked.
"""

import sys
from pathlib import Path

import horovod.tensorflow.keras as hvd
import numpy as np
import tensorflow as tf

hvd.init()
out = Path(sys.argv[1])
tf.random.set_seed(1000 + hvd.rank())
rng = np.random.default_rng(hvd.rank())
x = rng.normal(size=(512, 8)).astype("float32")
y = (x[:, :4].sum(axis=1) > x[:, 4:].sum(axis=1)).astype("int32")

model = tf.keras.Sequential(
    [tf.keras.Input(shape=(8,)), tf.keras.layers.Dense(16, activation="relu"), tf.keras.layers.Dense(2)]
)
optimizer = hvd.DistributedOptimizer(tf.keras.optimizers.legacy.Adam(0.01 * hvd.size()))
model.compile(optimizer=optimizer, loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
initial = model.get_weights()
history = model.fit(
    x,
    y,
    batch_size=64,
    epochs=3,
    verbose=0,
    callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0)],
)
np.savez(
    out / f"rank{hvd.rank()}.npz",
    size=hvd.size(),
    loss=np.array(history.history["loss"]),
    **{f"initial_{i}": w for i, w in enumerate(initial)},
    **{f"final_{i}": w for i, w in enumerate(model.get_weights())},
)
losses = history.history["loss"]
print(f"rank {hvd.rank()} of {hvd.size()}: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
