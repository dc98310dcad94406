"""Writes the Keras fixtures of tests/keras_h5.rs: small models built and run by real Keras.

Run by hand, outside CI (the Rust tests read only the files this writes), in a virtualenv with
TensorFlow and Keras 3 (made with TensorFlow-CPU 2.21, Keras 3.15.1, h5py 3.14):

    python -m venv ~/venvs/tf && ~/venvs/tf/bin/pip install tensorflow-cpu keras h5py
    KERAS_BACKEND=tensorflow CUDA_VISIBLE_DEVICES= ~/venvs/tf/bin/python \
        crates/lstm/tests/keras/make_fixtures.py

For each case it writes into crates/lstm/tests/keras/<case>/:

- model.weights.h5: `model.save_weights(...)` of a Keras model whose every weight (biases
  included) was set to seeded random values;
- config.json: this library's model configuration of the same network (format `lstm-model`);
- expected.json: a fixed input and Keras' own output for it (`model(x)`, float32), with the
  versions that made it.

The layers are given names of their own (`encoder`, ...) on purpose: Keras 3 saves and loads a
model's layers by class and order (`layers/lstm`, `layers/lstm_1`), not by name.
"""

import json
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers as L  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
B, T = 4, 5

CHARS = ["a", "b", "c", "d"]  # + the unknown token: 5 ids
WORDS = ["bad", "good", "movie", "the", "very"]  # + the unknown token: 6 ids


def settings(task, cell, layers, hidden, bidirectional=False, embedding=0, **over):
    """The `settings` block of a config.json (what `lstm train` records), for this network."""
    s = {
        "data": "",
        "val": None,
        "cell": cell,
        "variant": "standard",
        "layers": layers,
        "hidden": hidden,
        "proj": 0,
        "bidirectional": bidirectional,
        "embedding": embedding,
        "seq_len": T,
        "batch": B,
        "lr": 0.002,
        "optimizer": "adam",
        "lr_schedule": "constant",
        "weight_decay": 0.0,
        "momentum": 0.9,
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
        "clip": 5.0,
        "seed": 1,
        "threads": 0,
        "steps": 1,
        "epochs": None,
        "minutes": None,
        "save_every": None,
        "eval_every": 250,
        "sample_every": 0,
        "val_fraction": 0.1,
        "columns": [],
        "date_column": None,
        "window": 24,
        "horizon": 1,
        "holdout": 0,
        "transform": "none",
        "text_column": "text",
        "label_column": "label",
        "tokens": "char",
        "max_len": 256,
        "min_count": 2,
        "max_vocab": 20000,
        "on_nonfinite": "stop",
    }
    s.update(over)
    return s


def config(task, mode, inp, hidden, layers, head, bidirectional=False, bias=True, **extra):
    """A config.json of this library for the network."""
    embedding = inp.get("dim", 0)
    c = {
        "format": "lstm-model",
        "format_version": 2,
        "task": task,
        "model": {
            "input": inp,
            "mode": mode,
            "peephole": False,
            "coupled": False,
            "hidden_size": hidden,
            "num_layers": layers,
            "proj_size": 0,
            "bidirectional": bidirectional,
            "bias": bias,
            "dropout": 0.0,
            "recurrent_dropout": 0.0,
            "head_dropout": 0.0,
            "head": head,
            "init": "xavier_orthogonal",
            "forget_bias": 1.0,
            "optimizer": {
                "kind": "adam",
                "lr": 0.002,
                "beta1": 0.9,
                "beta2": 0.999,
                "eps": 1e-08,
                "weight_decay": 0.0,
            },
            "clip_grad_norm": 5.0,
            "clip_grad_value": 0.0,
        },
    }
    c.update({k: v for k, v in extra.items() if k != "settings"})
    c["settings"] = settings(
        task, mode, layers, hidden, bidirectional, embedding, **extra.get("settings", {})
    )
    return c


def series(features, horizon):
    cols = ["x", "y", "z"][:features]
    return {
        "columns": cols,
        "date_column": None,
        "transform": "none",
        "mean": [0.0] * features,
        "std": [1.0] * features,
        "window": T,
        "horizon": horizon,
    }


def cases():
    """(name, Keras model, our config, input kind, input size)."""
    V = len(CHARS) + 1
    W = len(WORDS) + 1
    text_vocab = {"kind": "char", "tokens": CHARS}
    word_vocab = {"kind": "word", "tokens": WORDS}
    yield (
        "lstm_text_embedding",
        keras.Sequential(
            [
                keras.Input((None,), dtype="int32"),
                L.Embedding(V, 3, name="chars"),
                L.LSTM(4, return_sequences=True, name="encoder"),
                L.Dense(V, name="logits"),
            ]
        ),
        config(
            "text",
            "lstm",
            {"kind": "embedding", "vocab": V, "dim": 3},
            4,
            1,
            {"kind": "per_step", "outputs": V},
            vocab=text_vocab,
        ),
        "tokens",
        V,
    )
    yield (
        "gru_text_onehot",
        keras.Sequential(
            [
                keras.Input((None, V)),
                L.GRU(4, return_sequences=True, name="encoder"),
                L.Dense(V, name="logits"),
            ]
        ),
        config(
            "text",
            "gru",
            {"kind": "one_hot", "vocab": V},
            4,
            1,
            {"kind": "per_step", "outputs": V},
            vocab=text_vocab,
        ),
        "onehot",
        V,
    )
    yield (
        "lstm_2layer_text",
        keras.Sequential(
            [
                keras.Input((None,), dtype="int32"),
                L.Embedding(V, 3, name="chars"),
                L.LSTM(4, return_sequences=True, name="lower"),
                L.LSTM(4, return_sequences=True, name="upper"),
                L.Dense(V, name="logits"),
            ]
        ),
        config(
            "text",
            "lstm",
            {"kind": "embedding", "vocab": V, "dim": 3},
            4,
            2,
            {"kind": "per_step", "outputs": V},
            vocab=text_vocab,
        ),
        "tokens",
        V,
    )
    yield (
        "bilstm_classify",
        keras.Sequential(
            [
                keras.Input((None,), dtype="int32"),
                L.Embedding(W, 3, name="words"),
                L.Bidirectional(L.LSTM(3, return_sequences=True), name="lower"),
                L.Bidirectional(L.LSTM(3), name="upper"),
                L.Dense(2, name="logits"),
            ]
        ),
        config(
            "classify",
            "lstm",
            {"kind": "embedding", "vocab": W, "dim": 3},
            3,
            2,
            {"kind": "last_step", "outputs": 2},
            bidirectional=True,
            vocab=word_vocab,
            labels=["neg", "pos"],
            settings={"tokens": "word"},
        ),
        "tokens",
        W,
    )
    yield (
        "lstm_forecast",
        keras.Sequential(
            [
                keras.Input((None, 2)),
                L.LSTM(4, name="encoder"),
                L.Dense(2, name="next"),
            ]
        ),
        config(
            "forecast",
            "lstm",
            {"kind": "dense", "features": 2},
            4,
            1,
            {"kind": "last_step", "outputs": 2},
            series=series(2, 2),
            settings={"columns": ["x", "y"], "window": T, "horizon": 2},
        ),
        "features",
        2,
    )
    yield (
        "simple_rnn_forecast",
        keras.Sequential(
            [
                keras.Input((None, 2)),
                L.SimpleRNN(3, name="encoder"),
                L.Dense(1, name="next"),
            ]
        ),
        config(
            "forecast",
            "rnn_tanh",
            {"kind": "dense", "features": 2},
            3,
            1,
            {"kind": "last_step", "outputs": 1},
            series=series(2, 1),
            settings={"columns": ["x", "y"], "window": T},
        ),
        "features",
        2,
    )
    yield (
        "rnn_relu_nobias_forecast",
        keras.Sequential(
            [
                keras.Input((None, 2)),
                L.SimpleRNN(4, activation="relu", use_bias=False, return_sequences=True),
                L.SimpleRNN(4, activation="relu", use_bias=False),
                L.Dense(1, name="next"),
            ]
        ),
        config(
            "forecast",
            "rnn_relu",
            {"kind": "dense", "features": 2},
            4,
            2,
            {"kind": "last_step", "outputs": 1},
            bias=False,
            series=series(2, 1),
            settings={"columns": ["x", "y"], "window": T},
        ),
        "features",
        2,
    )


def main():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(6)
    for name, model, cfg, kind, size in cases():
        # every weight random (Keras initialises biases to zero, which would hide their layout)
        model.set_weights(
            [rng.uniform(-1.0, 1.0, w.shape).astype("float32") for w in model.get_weights()]
        )
        if kind == "features":
            x = rng.uniform(-1.0, 1.0, (B, T, size)).astype("float32")
            inp = {"features": [float(v) for v in x.ravel()]}
        else:
            tokens = rng.integers(0, size, (B, T))
            inp = {"tokens": [int(v) for v in tokens.ravel()]}
            x = np.eye(size, dtype="float32")[tokens] if kind == "onehot" else tokens.astype("int32")
        y = np.asarray(model(x, training=False), dtype="float32")
        # the outputs must change with the input (far beyond the tests' tolerance of 1e-5), or a
        # wrong layout could pass unseen
        assert np.ptp(y.reshape(-1, y.shape[-1]), axis=0).max() > 0.02, (name, y)
        out = HERE / name
        out.mkdir(exist_ok=True)
        path = out / "model.weights.h5"
        model.save_weights(path)
        (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        expected = {
            "made_by": f"keras {keras.__version__}, backend {keras.backend.backend()}, "
            f"h5py {h5py.__version__}, make_fixtures.py",
            "batch": B,
            "steps": T,
            **inp,
            "output_shape": list(y.shape),
            "keras_output": [float(v) for v in y.ravel()],
        }
        (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
        with h5py.File(path) as f:
            paths = []
            f.visititems(lambda n, o: paths.append(n) if isinstance(o, h5py.Dataset) else None)
        print(f"{name}: {path.stat().st_size} bytes, {paths}")


if __name__ == "__main__":
    main()
