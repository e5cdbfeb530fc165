"""Training on several devices with the backend's own engine.

Longer than 400 lines: the TensorFlow and JAX engines and the batch
filling they share are one mechanism behind one `train_on_batch`; split,
each half would need the other's private helpers.

- TensorFlow: `tf.distribute.MirroredStrategy` over the visible GPUs (or,
  without GPUs, every logical CPU device), or
  `tf.distribute.MultiWorkerMirroredStrategy` across machines (`TF_CONFIG`).
- JAX: `keras.distribution.DataParallel` over `jax.devices()`.
- PyTorch: not supported (it would need torch's own DistributedDataParallel).

Build, compile, fit, evaluate and save the model inside `distribution_scope`:
TensorFlow creates mirrored variables only inside its strategy's scope, and
Keras on JAX reads the distribution when it creates variables and again
when `fit` shards each batch.

TensorFlow modules are imported only when a TensorFlow strategy is asked for.
"""

import contextlib
import json
import os

import keras
import numpy as np

from seqzoo.errors import InputError

KINDS = ("none", "mirrored", "multiworker")
_MULTIWORKER = None  # the process's MultiWorkerMirroredStrategy, once created


def check_kind(kind):
    """The canonical kind (`"none"`, `"mirrored"`, `"multiworker"`) of `kind`.

    `None` means `"none"`.

    Raises:
        InputError: an unknown kind, or one the current backend cannot run.
    """
    kind = "none" if kind is None else kind
    if kind not in KINDS:
        raise InputError(f"Expected --distribute to be one of {list(KINDS)}. "
                         f"Received: --distribute {kind!r}")
    backend = keras.backend.backend()
    if kind == "none":
        return kind
    if backend == "torch":
        raise InputError(f"--distribute {kind} is not supported on the torch backend; use "
                         "KERAS_BACKEND=tensorflow (tf.distribute) or jax (DataParallel)")
    if kind == "multiworker" and backend != "tensorflow":
        raise InputError("--distribute multiworker needs the TensorFlow backend "
                         f"(MultiWorkerMirroredStrategy). Received: backend {backend!r}")
    return kind


def _tf_config():
    """The parsed `TF_CONFIG`, checked enough to give a clear error."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise InputError("--distribute multiworker needs the TF_CONFIG environment variable "
                         "(the cluster's workers and this worker's index); see "
                         "docs/distribution.md")
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise InputError(f"TF_CONFIG is not valid JSON: {e.msg} at character {e.pos}") from None
    workers = config.get("cluster", {}).get("worker") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(workers, list) or not workers:
        raise InputError('TF_CONFIG: expected "cluster": {"worker": ["host:port", ...]}. '
                         f"Received: {raw:.200}")
    if (not isinstance(task, dict) or task.get("type") != "worker"
            or not isinstance(task.get("index"), int)
            or not 0 <= task["index"] < len(workers)):
        raise InputError('TF_CONFIG: expected "task": {"type": "worker", "index": i} with '
                         f"0 <= i < {len(workers)}. Received: task={task!r}")
    return config


def _mirrored_devices(tf):
    """Every visible GPU; without GPUs every logical CPU device."""
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


class Distribution:
    """What `distribution_scope` set up, and how to train one batch with it.

    Attributes:
        kind: `"none"`, `"mirrored"` or `"multiworker"`.
        backend: the Keras backend.
        num_replicas: model copies that each take a share of every batch
            (1 without distribution).
        strategy: the `tf.distribute.Strategy` (TensorFlow), else `None`.
        distribution: the `keras.distribution.DataParallel` (JAX), else `None`.
    """

    def __init__(self, kind, num_replicas=1, strategy=None, distribution=None):
        self.kind = kind
        self.backend = keras.backend.backend()
        self.num_replicas = num_replicas
        self.strategy = strategy
        self.distribution = distribution

    def train_on_batch(self, model, x, y, sample_weight=None):
        """`model.train_on_batch(x, y, sample_weight, return_dict=True)`, split over the replicas.

        Keras' own `train_on_batch` does not split a batch: under a
        TensorFlow strategy every replica would train on the whole batch, and
        on JAX a batch whose size is not a multiple of the device count
        cannot be sharded.

        Here both backends first fill a batch whose size is not a multiple of
        `num_replicas` up with rows that copy a real row's inputs but whose
        targets are all padding (and whose sample weight is 0), so the
        masked loss, its gradients and the token metrics (accuracy,
        perplexity) are those of the real rows. Keras' sequence-level
        `exact_match` counts a fill row as a match (it has no real token).
        Then:

        - TensorFlow: the batch is cut into `num_replicas` equal consecutive
          shards, one per replica. For a `SequenceLoss` model each replica's
          loss is rescaled so that the averaged gradient is that of the mean
          over all real tokens of the batch, as on one device (see
          `_normalize_by_global_tokens`); the reported loss is that mean too.
        - JAX: the batch is sharded over the devices and the step computes
          the same global loss as one device.

        Gradient clipping: Keras clips on JAX the global gradient, as on one
        device, but on TensorFlow each replica's share before they are
        summed, so a clipping norm that binds acts differently there.

        Args:
            model: a compiled Keras model built in `distribution_scope`.
            x, y: a batch of numpy arrays (any nest), first axis the batch.
            sample_weight: optional per-example weights `[batch]`.

        Returns:
            The logs dict of the step (floats).
        """
        if self.strategy is not None and self.num_replicas > 1:
            return self._tf_train_on_batch(model, x, y, sample_weight)
        if self.distribution is not None and self.num_replicas > 1:
            x, y, sample_weight = _pad_to_multiple(x, y, sample_weight, self.num_replicas)
            previous = keras.distribution.distribution()
            keras.distribution.set_distribution(self.distribution)
            try:
                return model.train_on_batch(x, y, sample_weight, return_dict=True)
            finally:
                keras.distribution.set_distribution(previous)
        if self.strategy is None and self.backend == "tensorflow" and not model.run_eagerly:
            return _tf_train_on_batch_traced_once(model, x, y, sample_weight)
        return model.train_on_batch(x, y, sample_weight, return_dict=True)

    def evaluate(self, model, batches):
        """`model.evaluate(batches, return_dict=True)`, on every kind of distribution.

        Keras' `evaluate` fails under `MultiWorkerMirroredStrategy`
        (tensorflow/tensorflow#72388) and, on JAX, on a batch that does not
        split across the devices. On TensorFlow with several replicas the
        batches go through the replicas as in `train_on_batch`; on JAX the
        evaluation runs on one device (the weights are replicated, so any
        device has them). Metrics that pool over tokens (the zoo's token
        accuracy and perplexity) come out as on one device; Keras' loss is
        a mean of batch losses weighted by batch size, where a filled-up
        batch counts its copies.

        Args:
            model: a compiled Keras model built in `distribution_scope`.
            batches: a `keras.utils.PyDataset` (or any sequence) of `(x, y)`
                or `(x, y, sample_weight)` batches of numpy arrays.

        Returns:
            The logs dict (floats).
        """
        if self.strategy is not None and self.num_replicas > 1:
            logs = {}
            model.reset_metrics()
            for index in range(len(batches)):
                x, y, sample_weight = (tuple(batches[index]) + (None,))[:3]
                logs = self._tf_step(model, "test_step", x, y, sample_weight, reset=False)
            return logs
        if self.distribution is not None:
            previous = keras.distribution.distribution()
            keras.distribution.set_distribution(None)
            try:
                return model.evaluate(batches, verbose=0, return_dict=True)
            finally:
                keras.distribution.set_distribution(previous)
        if self.strategy is None and self.backend == "tensorflow" and not model.run_eagerly:
            return _tf_evaluate_traced_once(model, batches)
        return model.evaluate(batches, verbose=0, return_dict=True)

    def _tf_train_on_batch(self, model, x, y, sample_weight):
        return self._tf_step(model, "train_step", x, y, sample_weight)

    def _tf_step(self, model, step_name, x, y, sample_weight, reset=True):
        import tensorflow as tf

        n = self.num_replicas
        x, y, sample_weight = _pad_to_multiple(x, y, sample_weight, n)
        _normalize_by_global_tokens(model)

        def per_replica(i):
            return keras.tree.map_structure(
                lambda a: tf.constant(np.split(np.asarray(a), n)[i]), (x, y, sample_weight))

        data = self.strategy.experimental_distribute_values_from_function(
            lambda context: per_replica(context.replica_id_in_sync_group))
        # What Model.train_on_batch does, which cannot take per-replica values:
        # build the compiled loss and metrics from a plain batch, then run one
        # step on every replica.
        model._maybe_symbolic_build(data_batch=per_replica(0))
        if reset:
            model.reset_metrics()
        _trace_open(self._distributed_step(model, step_name), data)(data)
        # Read here, outside the replicas, the metrics pool their counts over
        # all replicas; each replica's own result would be a shard's ratio.
        with self.strategy.scope():
            logs = model.get_metrics_result()
        return {name: float(np.asarray(value)) for name, value in logs.items()}

    def _distributed_step(self, model, step_name):
        """A compiled `model.<step_name>` on every replica.

        Keras' own train and test functions average the replicas' logs with
        `strategy.reduce("MEAN", v, axis=0)`, which fails on scalars under
        `MultiWorkerMirroredStrategy` (tensorflow/tensorflow#72388).
        """
        import tensorflow as tf

        steps = getattr(model, "_seqzoo_distributed_steps", None)
        if steps is None or steps[0] is not self.strategy:
            steps = (self.strategy, {})
            model._seqzoo_distributed_steps = steps
        if step_name not in steps[1]:
            strategy, step = self.strategy, getattr(model, step_name)

            def run(data):
                strategy.run(step, args=(data,))

            steps[1][step_name] = tf.function(run, reduce_retracing=True)
        return steps[1][step_name]

    def __repr__(self):
        return (f"Distribution(kind={self.kind!r}, backend={self.backend!r}, "
                f"num_replicas={self.num_replicas})")


def _tf_train_on_batch_traced_once(model, x, y, sample_weight):
    """`model.train_on_batch(x, y, sample_weight, return_dict=True)` with one trace.

    Keras' own train function is a `tf.function` with `reduce_retracing`:
    it traces the step for the first batch's shapes, then once more with
    the dimensions that changed left open, so a run with batches of more
    than one shape traces the whole step (forward pass and gradients)
    twice. Here the step is traced once, with every batch and length
    dimension open, and serves every batch. The step is Keras'
    `model.train_step`, so the update is the same; a new `compile` (which
    drops Keras' train function) gives a new trace, as in Keras.
    """
    model._maybe_symbolic_build(data_batch=(x, y, sample_weight))
    model.make_train_function()
    step = _traced_once(model, "train_step", model.train_function, (x, y, sample_weight))
    model.reset_metrics()
    return _logs(step((x, y) if sample_weight is None else (x, y, sample_weight)))


def _tf_evaluate_traced_once(model, batches):
    """`model.evaluate(batches, verbose=0, return_dict=True)` with one trace.

    As `_tf_train_on_batch_traced_once`, for Keras' `test_step`: the
    metrics are reset, every batch adds to them, and the logs are their
    results after the last batch, as in Keras' `evaluate`.
    """
    model.make_test_function()
    model.reset_metrics()
    logs = {}
    for index in range(len(batches)):
        x, y, sample_weight = (tuple(batches[index]) + (None,))[:3]
        step = _traced_once(model, "test_step", model.test_function, (x, y, sample_weight))
        logs = step((x, y) if sample_weight is None else (x, y, sample_weight))
    return _logs(logs)


def _traced_once(model, step_name, keras_function, batch):
    """A `tf.function` of `model.<step_name>` first traced with open dimensions.

    Kept on the model beside Keras' own function of the step, and made anew
    when Keras makes that anew (after a new `compile`).
    """
    import tensorflow as tf

    steps = model.__dict__.setdefault("_seqzoo_traced_steps", {})
    cached = steps.get(step_name)
    if cached is None or cached[0] is not keras_function:
        step = tf.function(getattr(model, step_name), reduce_retracing=True,
                           jit_compile=model.jit_compile)
        cached = steps[step_name] = (keras_function, step, set())
    _, step, traced = cached
    data = batch[:2] if batch[2] is None else batch
    signature = keras.tree.map_structure(
        lambda a: tf.TensorSpec([None] * np.ndim(a), tf.as_dtype(np.asarray(a).dtype)), data)
    key = repr(signature)
    if key not in traced:
        step.get_concrete_function(signature)
        traced.add(key)
    return step


def _trace_open(function, data):
    """`function` (a `tf.function` of per-replica batches), first traced for `data`
    with open dimensions, so that batches of other shapes reuse that trace."""
    import tensorflow as tf
    from tensorflow.python.distribute import values

    def open_spec(value):
        if value is None:
            return None
        if isinstance(value, values.PerReplica):
            return values.PerReplicaSpec(*[open_spec(v) for v in value.values])
        return tf.TensorSpec([None] * len(value.shape), value.dtype)

    traced = function.__dict__.setdefault("_seqzoo_open_traces", set())
    signature = tf.nest.map_structure(open_spec, data)
    key = repr(signature)
    if key not in traced:
        function.get_concrete_function(signature)
        traced.add(key)
    return function


def _logs(logs):
    """Step results as floats, in the order of Keras' `return_dict=True` logs."""
    return {name: float(np.asarray(value)) for name, value in sorted(logs.items())}


def _normalize_by_global_tokens(model):
    """Makes a `SequenceLoss` model's replicas divide by the batch's token count.

    Each replica's `SequenceLoss` is the mean over its own shard's real
    tokens, and Keras averages the replicas' gradients, so shards with
    fewer tokens would weigh more than on one device. Scaling replica `r`'s
    loss by `num_replicas * tokens_r / tokens_all` turns the average into
    the mean over all real tokens of the batch, exactly what one device
    computes. Installed once per model (an instance attribute wrapping
    `compute_loss`); other losses are left alone.
    """
    import tensorflow as tf

    from seqzoo.losses import SequenceLoss
    from seqzoo.text.specials import PAD_ID

    if getattr(model, "_seqzoo_global_tokens", False) or not isinstance(
            getattr(model, "loss", None), SequenceLoss):
        return
    original = model.compute_loss

    def compute_loss(x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = original(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                        training=training)
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1 or y is None:
            return loss
        weights = tf.cast(tf.not_equal(y, PAD_ID), loss.dtype)
        if sample_weight is not None:
            weights *= tf.reshape(tf.cast(sample_weight, loss.dtype), (-1, 1))
        local = tf.reduce_sum(weights)
        total = context.all_reduce(tf.distribute.ReduceOp.SUM, local)
        scale = context.num_replicas_in_sync * local / tf.maximum(total, 1.0)
        # A shard of weight-0 copies only: its loss is 0/0.
        return tf.where(local > 0, loss * scale, tf.zeros_like(loss))

    model.compute_loss = compute_loss
    model._seqzoo_global_tokens = True


def _pad_to_multiple(x, y, sample_weight, multiple):
    """Fills a batch up to a multiple of `multiple` rows that count for nothing.

    A fill row copies the inputs of a real row (so it computes like one)
    and has targets of `PAD_ID` only and sample weight 0: masked losses and
    token metrics skip it (Keras passes sample weights to weighted metrics
    only, so the targets must be padding too).
    """
    from seqzoo.text.specials import PAD_ID

    size = len(keras.tree.flatten(x)[0])
    weights = (np.ones((size,), "float32") if sample_weight is None
               else np.asarray(sample_weight, "float32"))
    extra = -size % multiple
    if not extra:
        return x, y, weights
    rows = np.concatenate([np.arange(size), np.arange(extra) % size])

    def fill(a, targets=False):
        a = np.take(np.asarray(a), rows, axis=0)
        if targets:
            a[size:] = PAD_ID
        return a

    x = keras.tree.map_structure(fill, x)
    y = keras.tree.map_structure(lambda a: fill(a, targets=True), y)
    weights = np.take(weights, rows)
    weights[size:] = 0.0
    return x, y, weights


@contextlib.contextmanager
def distribution_scope(kind=None):
    """Runs the block with the model's variables and training spread over devices.

    Example:

    ```python
    with distribution_scope("mirrored") as dist:
        model = seqzoo.create("seq2seq_luong", ...)
        model.compile()
        for x, y in batches:
            logs = dist.train_on_batch(model, x, y)
    ```

    Args:
        kind: `None` or `"none"` (no distribution: the block runs as is),
            `"mirrored"` (every local device: TensorFlow `MirroredStrategy`,
            JAX `keras.distribution.DataParallel`) or `"multiworker"`
            (TensorFlow `MultiWorkerMirroredStrategy`; needs `TF_CONFIG`; the
            first such scope must come before any other TensorFlow work in
            the process, later ones reuse its strategy).

    Yields:
        A `Distribution` describing the replicas.

    Raises:
        InputError: an unknown kind, a backend that cannot run it (torch; JAX
            for `"multiworker"`), or a missing or malformed `TF_CONFIG`.
    """
    kind = check_kind(kind)
    if kind == "none":
        yield Distribution(kind)
        return
    if keras.backend.backend() == "jax":
        import jax

        devices = jax.devices()
        previous = keras.distribution.distribution()
        data_parallel = keras.distribution.DataParallel(devices=devices)
        keras.distribution.set_distribution(data_parallel)
        try:
            yield Distribution(kind, len(devices), distribution=data_parallel)
        finally:
            keras.distribution.set_distribution(previous)
        return
    import tensorflow as tf

    if kind == "multiworker":
        global _MULTIWORKER
        _tf_config()
        # TensorFlow sets up collective ops once per process, before any other
        # TensorFlow work; later scopes reuse that strategy.
        if _MULTIWORKER is None:
            _MULTIWORKER = tf.distribute.MultiWorkerMirroredStrategy()
        strategy = _MULTIWORKER
    else:
        strategy = tf.distribute.MirroredStrategy(devices=_mirrored_devices(tf))
    with strategy.scope():
        yield Distribution(kind, strategy.num_replicas_in_sync, strategy=strategy)


def num_replicas(kind=None):
    """How many replicas `distribution_scope(kind)` would train on, without entering it.

    For `"multiworker"` this counts the workers in `TF_CONFIG` times the
    local replicas, assuming every worker has as many devices as this one.
    """
    kind = check_kind(kind)
    if kind == "none":
        return 1
    if keras.backend.backend() == "jax":
        import jax

        return len(jax.devices())
    import tensorflow as tf

    local = len(_mirrored_devices(tf))
    if kind == "multiworker":
        # MultiWorkerMirroredStrategy uses one CPU per worker when it has no GPU.
        local = len(tf.config.list_logical_devices("GPU")) or 1
        return local * len(_tf_config()["cluster"]["worker"])
    return local
