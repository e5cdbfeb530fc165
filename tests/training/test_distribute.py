"""Training on two devices (the CPU split in two) matches training on one.

`seqzoo train` runs once on one device and once with `--distribute` on two,
from the same seed on the same batches, in fresh processes (logical devices
must be set up before the backend starts; one process per backend for
`mirrored`, two local workers for `multiworker`). Each process records
every step of the distribution (`Distribution.train_on_batch`, `.evaluate`)
and where the trainer's variables live.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from seqzoo.errors import InputError
from seqzoo.training.distribute import (
    _pad_to_multiple,
    check_kind,
    distribution_scope,
    num_replicas,
)
from tests.fixtures_train import SETTINGS, sort_data

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKEND = keras.backend.backend()

# Runs `seqzoo train` (seqzoo.cli.main) with each argument list of the job
# and writes, for each run folder, what the distribution did: the replicas,
# the devices of a variable, each step's batch size and loss, the dev
# evaluations' token accuracy and perplexity, and the final weights.
WORKER = textwrap.dedent("""
    import json, os, sys
    job = json.load(open(sys.argv[1]))
    if os.environ["KERAS_BACKEND"] == "tensorflow" and job["two_devices"]:
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    from seqzoo.cli import main
    from seqzoo.training.distribute import Distribution
    from seqzoo.training.trainer import Trainer

    def devices_of(dist, variable):
        if dist.strategy is not None:
            local = dist.strategy.experimental_local_results(variable.value)
            return sorted(v.device for v in local)
        if dist.distribution is not None:
            return sorted(str(d) for d in variable.value.sharding.device_set)
        return []

    train_on_batch, evaluate, fit = Distribution.train_on_batch, Distribution.evaluate, Trainer.fit

    def recorded_train_on_batch(self, model, x, y, sample_weight=None):
        logs = train_on_batch(self, model, x, y, sample_weight)
        run["sizes"].append(len(y))
        run["losses"].append(float(logs["loss"]))
        return logs

    def recorded_evaluate(self, model, batches):
        logs = evaluate(self, model, batches)
        run["eval_sizes"] += [len(batches[i][1]) for i in range(len(batches))]
        run["eval"] += [float(logs["token_accuracy"]), float(logs["perplexity"])]
        return logs

    def recorded_fit(self):
        run["replicas"] = self.distribution.num_replicas
        run["devices"] = devices_of(self.distribution, self.model.trainable_variables[0])
        history = fit(self)
        run["weights"] = [w.tolist() for w in self.model.get_weights()]
        return history

    Distribution.train_on_batch = recorded_train_on_batch
    Distribution.evaluate = recorded_evaluate
    Trainer.fit = recorded_fit
    runs = {}
    for args in job["runs"]:
        run = runs[args[args.index("--out") + 1]] = {"sizes": [], "losses": [], "eval": [],
                                                     "eval_sizes": []}
        if main(args) != 0:
            sys.exit(f"seqzoo {' '.join(args)}: failed")
    json.dump(runs, open(job["out"], "w"))
""")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """193 training and 33 dev pairs: in batches of 32, one batch of each has a single
    row, fewer than the replicas (one gets only a weight-0 copy). Words of 2-5 letters:
    the shards of a batch hold different numbers of real tokens."""
    directory = tmp_path_factory.mktemp("data")
    return {"train": sort_data(directory, 193, 0, "train"),
            "dev": sort_data(directory, 33, 1, "dev")}


def _train_args(data, out, *extra):
    """`seqzoo train` of 2 epochs of 7 batches with a dev set, into `out`. Norm clipping
    that never binds: TensorFlow clips each replica's share."""
    return ["train", *SETTINGS, "--train", *data["train"], "--dev", *data["dev"],
            "--epochs", "2", "--batch-size", "32", "--learning-rate", "0.01",
            "--clipnorm", "1000", "--quiet", "--out", str(out), *extra]


def _start_worker(backend, tmp_path, runs, name="out", two_devices=False, **env):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / f"{name}.json"
    job = tmp_path / f"{name}-job.json"
    job.write_text(json.dumps({"runs": runs, "out": str(out), "two_devices": two_devices}))
    # Two host devices for JAX; XLA's cheaper compiler passes, since every
    # program here runs a few times only (both runs of a process compile alike).
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT,
               XLA_FLAGS=("--xla_force_host_platform_device_count=2 "
                          "--xla_backend_optimization_level=0 "
                          "--xla_llvm_disable_expensive_passes=true"), **env)
    process = subprocess.Popen([sys.executable, str(script), str(job)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=ROOT)
    return process, out


def _finish(process, out):
    try:
        _, stderr = process.communicate(timeout=600)
    finally:
        process.kill()
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(out.read_text())


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _run_record(folder):
    return json.loads((folder / "run.json").read_text())


def _check_same_training(one, many):
    """`many` (distributed) trained exactly like `one` (one device)."""
    assert many["sizes"] == one["sizes"] and len(many["sizes"]) == 2 * 7
    assert 1 in many["sizes"]  # a batch of one row, smaller than the replica count
    # It learns: the mean loss of the steps fell from the first epoch to the second.
    assert np.mean(many["losses"][7:]) < np.mean(many["losses"][:7]) - 0.05
    # The same numbers as one device. Both compute the mean over all real
    # tokens of each batch (TensorFlow: replica losses rescaled by their
    # token share; JAX: one sharded global computation), so only float
    # rounding differs: sums split over two shards add in another order
    # (about 1e-7 relative per step). 1e-5 leaves room for 14 Adam steps to
    # grow that; a wrong reduction moves the weights by 1e-2 or more here
    # (measured: replicas' plain shard means, 0.047, and the one-row batch's
    # loss reported at half its value).
    np.testing.assert_allclose(many["losses"], one["losses"], rtol=1e-5, atol=1e-5)
    assert len(many["weights"]) == len(one["weights"])
    for a, b in zip(many["weights"], one["weights"]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    # Token accuracy and perplexity on dev (after each epoch) pool over all tokens: the
    # same as one device.
    assert many["eval_sizes"] == [32, 1] * 2
    assert len(many["eval"]) == 2 * 2
    np.testing.assert_allclose(many["eval"], one["eval"], rtol=1e-5)


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory, data):
    """`mirrored(backend)`: `(runs, folders)` of `seqzoo train` on one device
    (`folders["none"]`) and with `--distribute mirrored` on two, in one process of
    `backend`; run once, for the first test that asks (the multi-worker test
    compares with the one-device run too)."""
    done = {}

    def run(backend):
        if backend not in done:
            tmp = tmp_path_factory.mktemp(f"mirrored-{backend}")
            folders = {"none": tmp / "none", "mirrored": tmp / "mirrored"}
            done[backend] = _finish(*_start_worker(
                backend, tmp, [_train_args(data, folders["none"]),
                               _train_args(data, folders["mirrored"], "--distribute", "mirrored")],
                two_devices=True)), folders
        return done[backend]

    return run


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_mirrored_training_on_two_devices_matches_one_device(backend, mirrored):
    runs, folders = mirrored(backend)
    one, two = runs[str(folders["none"])], runs[str(folders["mirrored"])]
    assert one["replicas"] == 1 and two["replicas"] == 2
    # Every variable really lives on both devices.
    assert len(two["devices"]) == 2 and two["devices"][0] != two["devices"][1]
    assert all(d.lower().endswith(("cpu:0", "cpu:1")) for d in two["devices"]), two["devices"]
    _check_same_training(one, two)

    # What `seqzoo train` writes: the run's replicas, steps and losses.
    one, two = _run_record(folders["none"]), _run_record(folders["mirrored"])
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert one["steps"] == two["steps"] == 14
    for a, b in zip(one["history"], two["history"]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)
        assert b["dev_loss"] == pytest.approx(a["dev_loss"], rel=1e-3)
    assert two["history"][-1]["dev_loss"] < two["history"][0]["dev_loss"]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="MultiWorkerMirroredStrategy is TensorFlow's")
def test_multiworker_training_on_two_local_workers(tmp_path, data, mirrored):
    """Two processes on this machine run `seqzoo train --distribute multiworker` with their
    TF_CONFIG, compared with the one-device run of `mirrored`. The strategy is set up
    by the command, before any other TensorFlow work of the process."""
    workers = [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]
    folders = [tmp_path / "w0", tmp_path / "w1"]
    started = [
        _start_worker("tensorflow", tmp_path,
                      [_train_args(data, folders[i], "--distribute", "multiworker")],
                      name=f"worker{i}",
                      TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                            "task": {"type": "worker", "index": i}}))
        for i in range(2)]
    outs = [_finish(*worker) for worker in started]
    many = [outs[i][str(folders[i])] for i in range(2)]
    assert [m["replicas"] for m in many] == [2, 2]
    reference, one_device = mirrored("tensorflow")
    _check_same_training(reference[str(one_device["none"])], many[0])
    # Both workers hold the same model.
    assert many[0]["weights"] == many[1]["weights"]
    assert many[0]["losses"] == many[1]["losses"]

    runs = [_run_record(folder) for folder in folders]
    assert [r["replicas"] for r in runs] == [2, 2]
    assert runs[0]["steps"] == runs[1]["steps"] == 14
    assert runs[0]["history"] == [{**h, "seconds": runs[0]["history"][i]["seconds"]}
                                  for i, h in enumerate(runs[1]["history"])]
    assert runs[0]["history"][-1]["dev_loss"] < runs[0]["history"][0]["dev_loss"]


def test_pad_to_multiple_adds_rows_that_count_for_nothing():
    x = {"source_ids": np.array([[4, 5], [6, 0], [7, 8]]), "decoder_input_ids": np.ones((3, 4))}
    y = np.array([[1, 3], [2, 3], [5, 3]])
    px, py, w = _pad_to_multiple(x, y, None, 2)
    # Inputs of a real row; targets all padding; weight 0.
    assert px["source_ids"].tolist() == [[4, 5], [6, 0], [7, 8], [4, 5]]
    assert px["decoder_input_ids"].shape == (4, 4)
    assert py.tolist() == [[1, 3], [2, 3], [5, 3], [0, 0]]
    assert w.tolist() == [1, 1, 1, 0]
    assert y.tolist() == [[1, 3], [2, 3], [5, 3]]  # the caller's arrays are untouched
    px, py, w = _pad_to_multiple(x, y, np.array([0.5, 1, 2]), 3)
    assert px is x and py is y and w.tolist() == [0.5, 1, 2]
    px, py, w = _pad_to_multiple(x["source_ids"][:1], y[:1], None, 4)
    assert px.tolist() == [[4, 5]] * 4 and py.tolist() == [[1, 3]] + [[0, 0]] * 3
    assert w.tolist() == [1, 0, 0, 0]


def test_kinds_and_clear_errors(monkeypatch):
    assert check_kind(None) == "none" and num_replicas(None) == 1
    with distribution_scope(None) as dist:
        assert dist.num_replicas == 1 and dist.strategy is None and dist.distribution is None
    with pytest.raises(InputError, match=r"one of \['none', 'mirrored', 'multiworker'\]\. "
                                         r"Received: --distribute 'mirror'"):
        check_kind("mirror")
    with monkeypatch.context() as patch:
        patch.setattr(keras.backend, "backend", lambda: "torch")
        with pytest.raises(InputError, match="not supported on the torch backend"):
            check_kind("mirrored")
    if BACKEND != "tensorflow":
        with pytest.raises(InputError, match="multiworker needs the TensorFlow backend"):
            check_kind("multiworker")
        return
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(InputError, match="needs the TF_CONFIG environment variable"):
        with distribution_scope("multiworker"):
            pass
    monkeypatch.setenv("TF_CONFIG", '{"cluster": ')
    with pytest.raises(InputError, match="TF_CONFIG is not valid JSON"):
        num_replicas("multiworker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                                                "task": {"type": "worker", "index": 2}}))
    with pytest.raises(InputError, match=r"0 <= i < 2\. Received: task="):
        num_replicas("multiworker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"]}}))
    with pytest.raises(InputError, match='expected "cluster": {"worker"'):
        num_replicas("multiworker")


class _Batches(keras.utils.PyDataset):
    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the TensorFlow step")
def test_one_device_steps_are_traced_once_and_compute_as_keras_does():
    """On one TensorFlow device the train and test steps are traced for the
    first batch only, with open shapes that serve the batches of every other
    shape, and give the losses, metrics and weights of Keras' own
    `train_on_batch` and `evaluate`; a new `compile` traces anew.
    (TensorFlow runs the Python step twice in a trace that creates
    variables, here the metrics' counters.)"""
    from seqzoo.models import create

    batches = [(np.array([[4, 5, 6]] * 4), np.array([1, 0, 1, 1])),
               (np.array([[4, 5, 6, 7, 8]] * 3), np.array([0, 1, 1])),
               (np.array([[6, 7]] * 5), np.array([1, 1, 0, 0, 1]))]
    models = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        model = create("lstm_classifier", vocab_size=12, num_classes=2, units=4,
                       embedding_dim=4)
        model.compile(optimizer=keras.optimizers.Adam(0.1),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        models.append(model)
    traces = []
    step = models[0].train_step
    models[0].train_step = lambda data: (traces.append(1), step(data))[1]
    with distribution_scope(None) as dist:
        ours = [dist.train_on_batch(models[0], *batches[0])]
        first = len(traces)
        ours += [dist.train_on_batch(models[0], x, y) for x, y in batches[1:] + batches]
    theirs = [models[1].train_on_batch(x, y, return_dict=True) for x, y in batches * 2]
    assert 1 <= first <= 2 and len(traces) == first
    for mine, keras_logs in zip(ours, theirs):
        assert list(mine) == list(keras_logs)
        np.testing.assert_allclose(list(mine.values()), list(keras_logs.values()), rtol=1e-6)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Evaluation over batches of several shapes: one trace, Keras' numbers.
    evaluations = []
    test_step = models[0].test_step
    models[0].test_step = lambda data: (evaluations.append(1), test_step(data))[1]
    with distribution_scope(None) as dist:
        mine = dist.evaluate(models[0], batches)
        assert len(evaluations) in (1, 2)
        assert dist.evaluate(models[0], batches[::-1]) == pytest.approx(mine, rel=1e-6)
    assert len(evaluations) in (1, 2)
    keras_logs = models[1].evaluate(_Batches(batches), verbose=0, return_dict=True)
    assert list(mine) == list(keras_logs)
    np.testing.assert_allclose(list(mine.values()), list(keras_logs.values()), rtol=1e-6)
    models[0].compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    dist.train_on_batch(models[0], *batches[0])
    assert len(traces) > first


@pytest.mark.skipif(BACKEND not in ("tensorflow", "jax"), reason="needs tensorflow or jax")
def test_scope_is_left_as_it_was_found():
    """Entering and leaving the scope restores the backend's global state."""
    with distribution_scope("mirrored") as dist:
        assert dist.num_replicas == num_replicas("mirrored") >= 1
        if BACKEND == "tensorflow":
            import tensorflow as tf

            assert tf.distribute.get_strategy() is dist.strategy
        else:
            assert keras.distribution.distribution() is dist.distribution
    if BACKEND == "tensorflow":
        assert not tf.distribute.has_strategy()
    else:
        assert keras.distribution.distribution() is None
