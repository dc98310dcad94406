"""One-off check, by hand and outside CI: files that `lstm export keras` writes load in real Keras.

It trains a few small models with the `lstm` binary (a 2-layer one-hot LSTM and a GRU
character model, a bidirectional GRU and a bidirectional LSTM classifier with embeddings, a
SimpleRNN and a ReLU SimpleRNN forecaster), writes each with
`lstm export keras --model DIR --out DIR.weights.h5`, has the test `dump_for_keras_check` write
our outputs for a fixed input, then builds the same network in Keras from the model's
config.json, calls `model.load_weights(...)` on our file and compares Keras' outputs with ours.

From the repository root, with the release binary built (`cargo build --release`) and a
virtualenv with TensorFlow and Keras 3 (see make_fixtures.py):

    KERAS_BACKEND=tensorflow CUDA_VISIBLE_DEVICES= ~/venvs/tf/bin/python \
        crates/lstm/tests/keras/check_keras_load.py /tmp/keras-check

It prints the largest absolute difference per model and exits non-zero above 1e-5.
"""

import json
import os
import pathlib
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers as L  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[4]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
LSTM = TARGET / "release" / "lstm"


def lstm(*args):
    subprocess.run([str(LSTM), *map(str, args)], check=True)


def train(out):
    data = REPO / "data"
    text = out / "small.txt"
    text.write_text((data / "tinyshakespeare.txt").read_text()[:20000])
    common = ["--steps", "30", "--batch", "8", "--quiet", "--threads", "1"]
    jobs = {
        "text_lstm_2layer": ["text", "--data", text, "--hidden", "12", "--layers", "2",
                             "--seq-len", "16"],
        "text_gru": ["text", "--data", text, "--cell", "gru", "--hidden", "10", "--layers", "1",
                     "--seq-len", "16"],
        "classify_bigru": ["classify", "--data", data / "movie_review_sentiment.tsv",
                           "--cell", "gru", "--bidirectional", "--hidden", "6",
                           "--embedding", "5", "--max-len", "32"],
        "classify_bilstm_2layer": ["classify", "--data", data / "movie_review_sentiment.tsv",
                                   "--bidirectional", "--layers", "2", "--hidden", "5",
                                   "--embedding", "4", "--max-len", "32"],
        "forecast_rnn": ["forecast", "--data", data / "airline_passengers.csv",
                         "--column", "passengers", "--cell", "rnn", "--hidden", "6",
                         "--window", "8"],
        "forecast_rnn_relu_2layer": ["forecast", "--data", data / "airline_passengers.csv",
                                     "--column", "passengers", "--cell", "rnn-relu",
                                     "--layers", "2", "--hidden", "6", "--window", "8"],
    }
    for name, args in jobs.items():
        if not (out / name / "config.json").exists():
            lstm("train", *args, *common, "--out", out / name)
        lstm("export", "keras", "--model", out / name, "--out", out / f"{name}.weights.h5")
    return list(jobs)


def keras_model(cfg):
    """The Keras network of one of our config.json's `model`."""
    m = cfg["model"]
    inp = m["input"]
    layers = []
    if inp["kind"] == "embedding":
        layers += [keras.Input((None,), dtype="int32"), L.Embedding(inp["vocab"], inp["dim"])]
    elif inp["kind"] == "one_hot":
        layers.append(keras.Input((None, inp["vocab"])))
    else:
        layers.append(keras.Input((None, inp["features"])))
    per_step = m["head"]["kind"] == "per_step"
    n = m["num_layers"]
    for i in range(n):
        seq = per_step or i < n - 1
        h, bias = m["hidden_size"], m["bias"]
        cell = {
            "lstm": lambda: L.LSTM(h, use_bias=bias, return_sequences=seq),
            "gru": lambda: L.GRU(h, use_bias=bias, return_sequences=seq),
            "rnn_tanh": lambda: L.SimpleRNN(h, use_bias=bias, return_sequences=seq),
            "rnn_relu": lambda: L.SimpleRNN(
                h, activation="relu", use_bias=bias, return_sequences=seq
            ),
        }[m["mode"]]()
        layers.append(L.Bidirectional(cell) if m["bidirectional"] else cell)
    layers.append(L.Dense(m["head"]["outputs"]))
    return keras.Sequential(layers)


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/keras-check").resolve()
    out.mkdir(parents=True, exist_ok=True)
    names = train(out)
    subprocess.run(
        ["cargo", "test", "--release", "-p", "lstm", "--test", "keras_h5",
         "dump_for_keras_check"],
        check=True, cwd=REPO, env={**os.environ, "LSTM_KERAS_DUMP": str(out)},
    )
    worst = 0.0
    for name in names:
        cfg = json.loads((out / name / "config.json").read_text())
        model = keras_model(cfg)
        model.load_weights(out / f"{name}.weights.h5")
        d = json.loads((out / name / "keras_check.json").read_text())
        b, t = d["batch"], d["steps"]
        inp = cfg["model"]["input"]
        if "tokens" in d:
            tok = np.array(d["tokens"]).reshape(b, t)
            x = np.eye(inp["vocab"], dtype="float32")[tok] if inp["kind"] == "one_hot" else tok
        else:
            x = np.array(d["features"], dtype="float32").reshape(b, t, -1)
        y = np.asarray(model(x, training=False), dtype="float32").ravel()
        ours = np.array(d["ours"], dtype="float32")
        diff = float(np.abs(y - ours).max())
        worst = max(worst, diff)
        print(f"{name}: {y.size} outputs, max |keras - ours| = {diff:.3g}")
    print(f"keras {keras.__version__}: largest difference {worst:.3g}")
    sys.exit(0 if worst <= 1e-5 else 1)


if __name__ == "__main__":
    main()
