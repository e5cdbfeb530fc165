"""`tfa.seq2seq` decoders' interface and `dynamic_decode`, on Keras 3.

`dynamic_decode` runs `decoder.step` in one `keras.ops.while_loop`:

- TensorFlow: outputs are gathered in `tf.TensorArray`s, so the number of
  steps need not be known (`maximum_iterations=None` decodes until every
  entry is finished). Called eagerly, the loop runs in a `tf.function` traced
  anew for the call: the attention mechanisms keep their memory as Python
  attributes, so a cached trace would decode with a stale memory.
- Other backends (JAX): outputs are written into `[maximum_iterations, ...]`
  buffers, so `maximum_iterations` is required. Called eagerly the outputs
  are cut to the steps run; inside a traced function (`jax.jit`) the step
  count is not known while tracing and they keep `maximum_iterations` steps,
  zero past the last step.
"""

import abc

import keras
from keras import ops

from seqzoo.tfa.seq2seq._common import (
    on_tensorflow,
    rank,
    require_tensorflow,
    tensorflow,
    transpose_batch_time,
)


class Decoder(metaclass=abc.ABCMeta):
    """The interface of an RNN decoder that `dynamic_decode` runs, as TFA's.

    `initialize()` gives `(finished, first_inputs, initial_state)`;
    `step(time, inputs, state, training)` gives `(outputs, next_state,
    next_inputs, finished)`; the optional `finalize(outputs, final_state,
    sequence_lengths)` gives the final `(outputs, state)`.
    """

    @property
    def batch_size(self):
        """The batch size of input values."""
        raise NotImplementedError

    @property
    def output_size(self):
        """A (nested) structure of per-step output shapes without the batch
        dimension: ints, lists/tuples of ints, or `tf.TensorShape`s."""
        raise NotImplementedError

    @property
    def output_dtype(self):
        """The dtypes of the outputs, in the structure of `output_size`."""
        raise NotImplementedError

    @abc.abstractmethod
    def initialize(self, name=None):
        """Returns `(finished, initial_inputs, initial_state)`."""
        raise NotImplementedError

    @abc.abstractmethod
    def step(self, time, inputs, state, training=None, name=None):
        """Returns `(outputs, next_state, next_inputs, finished)`."""
        raise NotImplementedError

    def finalize(self, outputs, final_state, sequence_lengths):
        raise NotImplementedError

    @property
    def tracks_own_finished(self):
        """Whether the decoder keeps its own finished flags (beam search
        reorders the batch entries, so `dynamic_decode` must not OR them)."""
        return False


class BaseDecoder(keras.layers.Layer):
    """An RNN decoder that is a Keras layer: calling it runs `dynamic_decode`.

    Args:
        output_time_major: return `[time, batch, ...]` outputs instead of
            `[batch, time, ...]`.
        impute_finished: zero the outputs of finished entries and keep their
            state unchanged.
        maximum_iterations: the most steps to decode (required off
            TensorFlow).
        parallel_iterations: accepted for TFA compatibility (TensorFlow's
            while-loop setting; not used).
        swap_memory: accepted for TFA compatibility (not used).
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: the first argument of `initialize` (training inputs, an
            embedding matrix, start inputs: it depends on the sampler).
        initial_state: the initial state of the cell.
        training: passed to the cell.
        **kwargs: more arguments of `initialize` (`sequence_length`,
            `start_tokens`, `end_token`, ...).

    Returns:
        `(final_outputs, final_state, final_sequence_lengths)`.
    """

    def __init__(self, output_time_major=False, impute_finished=False, maximum_iterations=None,
                 parallel_iterations=32, swap_memory=False, **kwargs):
        self.output_time_major = output_time_major
        self.impute_finished = impute_finished
        self.maximum_iterations = maximum_iterations
        self.parallel_iterations = parallel_iterations
        self.swap_memory = swap_memory
        super().__init__(**kwargs)

    def __call__(self, *args, **kwargs):
        # Checked before Keras' __call__, which would add lines to the message.
        if self.maximum_iterations is None:
            _require_unbounded_loop()
        # Keras' __call__ would try to convert the TensorArrays of a state
        # (alignment history): such calls go straight to `call`.
        if any(_is_tensor_array(x) for x in keras.tree.flatten((args, kwargs))):
            return self.call(*args, **kwargs)
        return super().__call__(*args, **kwargs)

    def call(self, inputs, initial_state=None, training=None, **kwargs):
        init_kwargs = dict(kwargs)
        init_kwargs["initial_state"] = initial_state
        return dynamic_decode(
            self, output_time_major=self.output_time_major,
            impute_finished=self.impute_finished, maximum_iterations=self.maximum_iterations,
            parallel_iterations=self.parallel_iterations, swap_memory=self.swap_memory,
            training=training, decoder_init_input=inputs, decoder_init_kwargs=init_kwargs)

    @property
    def batch_size(self):
        raise NotImplementedError

    @property
    def output_size(self):
        raise NotImplementedError

    @property
    def output_dtype(self):
        raise NotImplementedError

    def initialize(self, inputs, initial_state=None, **kwargs):
        """Returns `(finished, initial_inputs, initial_state)`."""
        raise NotImplementedError

    def step(self, time, inputs, state, training):
        """Returns `(outputs, next_state, next_inputs, finished)`."""
        raise NotImplementedError

    def finalize(self, outputs, final_state, sequence_lengths):
        raise NotImplementedError

    @property
    def tracks_own_finished(self):
        return False

    def get_config(self):
        config = super().get_config()
        maximum_iterations = self.maximum_iterations
        if maximum_iterations is not None:
            maximum_iterations = int(ops.convert_to_numpy(maximum_iterations))
        config.update({
            "output_time_major": self.output_time_major,
            "impute_finished": self.impute_finished,
            "maximum_iterations": maximum_iterations,
            "parallel_iterations": self.parallel_iterations,
            "swap_memory": self.swap_memory,
        })
        return config


def dynamic_decode(decoder, output_time_major=False, impute_finished=False,
                   maximum_iterations=None, parallel_iterations=32, swap_memory=False,
                   training=None, scope=None, enable_tflite_convertible=False, **kwargs):
    """Runs a decoder's steps until every entry is finished, as TFA's `dynamic_decode`.

    Args:
        decoder: a `Decoder` or a `BaseDecoder`.
        output_time_major: return `[time, batch, ...]` outputs.
        impute_finished: zero the outputs of finished entries and copy their
            state through unchanged.
        maximum_iterations: a positive int scalar, the most steps. Required
            off TensorFlow and under XLA.
        parallel_iterations, swap_memory: accepted for TFA compatibility.
        training: passed to `decoder.step`.
        scope: accepted for TFA compatibility.
        enable_tflite_convertible: flatten each step's outputs to 1-D (a
            batch of 1 only), as TFA's TFLite mode; needs `maximum_iterations`
            and returns `maximum_iterations` steps.
        **kwargs: `decoder_init_input` and `decoder_init_kwargs`, the
            arguments of a `BaseDecoder`'s `initialize`.

    Returns:
        `(final_outputs, final_state, final_sequence_lengths)`: outputs in the
        structure of `decoder.output_size`, `[batch, time, ...]` (or time
        major), the state after the last step (or `finalize`'s), and the
        `[batch]` int32 step at which each entry finished.

    Raises:
        ValueError: if `maximum_iterations` is not a positive scalar, or is
            missing where it is required.
    """
    del parallel_iterations, swap_memory, scope
    if not isinstance(decoder, (Decoder, BaseDecoder)):
        raise TypeError("Expected `decoder` to be a tfa.seq2seq Decoder or BaseDecoder. "
                        f"Received: decoder={decoder!r}")
    xla = _in_xla_context()
    static_max = None
    if maximum_iterations is not None:
        maximum_iterations = ops.convert_to_tensor(maximum_iterations, dtype="int32")
        if rank(maximum_iterations) != 0:
            raise ValueError("maximum_iterations must be a scalar")
        static_max = _concrete_int(maximum_iterations)
        if static_max is not None and static_max <= 0:
            raise ValueError("maximum_iterations should be greater than 0. "
                             f"Received: maximum_iterations={static_max}")
    elif xla:
        raise ValueError("maximum_iterations is required for XLA compilation.")
    elif enable_tflite_convertible:
        raise ValueError("maximum_iterations is required with enable_tflite_convertible=True.")
    else:
        _require_unbounded_loop()
    if not on_tensorflow() and static_max is None:
        raise ValueError("Off TensorFlow, maximum_iterations must be a Python int or a concrete "
                         f"scalar. Received: maximum_iterations={maximum_iterations!r}")

    if isinstance(decoder, Decoder):
        initial = decoder.initialize()
    else:
        init_input = kwargs.pop("decoder_init_input", None)
        init_kwargs = kwargs.pop("decoder_init_kwargs", {}) or {}
        initial = decoder.initialize(init_input, **init_kwargs)
    finished, inputs, state = (_untracked(x) for x in initial)
    if maximum_iterations is not None:
        finished = ops.logical_or(ops.cast(finished, "bool"), maximum_iterations <= 0)

    loop = _Loop(decoder, maximum_iterations, static_max, impute_finished, training,
                 fixed_size=xla or enable_tflite_convertible, tflite=enable_tflite_convertible)
    if on_tensorflow() and tensorflow().executing_eagerly():
        outputs, state, lengths = _in_tf_function(
            lambda state: loop.run(finished, inputs, state), state)
    else:
        if not on_tensorflow():
            _build_with_a_symbolic_step(decoder, inputs, state, training)
        outputs, state, lengths = loop.run(finished, inputs, state)

    if not output_time_major:
        if enable_tflite_convertible:
            outputs = keras.tree.map_structure(lambda x: ops.expand_dims(x, 1), outputs)
        outputs = keras.tree.map_structure(transpose_batch_time, outputs)
    return outputs, state, lengths


def _require_unbounded_loop():
    require_tensorflow(
        "Decoding without maximum_iterations",
        "Pass maximum_iterations (to the decoder or dynamic_decode) to decode on it.")


class _Loop:
    """The decoding while-loop of `dynamic_decode` and its finalize call."""

    def __init__(self, decoder, max_iter, static_max, impute, training, fixed_size, tflite):
        self.decoder = decoder
        self.max_iter = max_iter
        self.static_max = static_max
        self.impute = impute
        self.training = training
        self.fixed_size = fixed_size
        self.tflite = tflite

    def _accumulators(self):
        dtypes = self.decoder.output_dtype
        shapes = _sizes_like(self.decoder.output_size, dtypes)
        dtypes = [keras.backend.standardize_dtype(d) for d in keras.tree.flatten(dtypes)]
        batch = _static_int(self.decoder.batch_size)
        if self.tflite:
            if batch is not None and batch != 1:
                raise ValueError("TFLite conversion requires a batch size of 1. "
                                 f"Received: batch_size={batch}")
            shapes = [(_prod(s),) for s in shapes]
        else:
            shapes = [(batch,) + s for s in shapes]
        if on_tensorflow():
            tf = tensorflow()
            return [tf.TensorArray(d, size=self.max_iter if self.fixed_size else 0,
                                   dynamic_size=not self.fixed_size, element_shape=s)
                    for s, d in zip(shapes, dtypes)]
        if any(dim is None for s in shapes for dim in s):
            raise ValueError("Off TensorFlow, the decoder's batch size and output sizes must be "
                             f"static. Received: output shapes {shapes}")
        return [ops.zeros((self.static_max,) + s, d) for s, d in zip(shapes, dtypes)]

    def run(self, finished, inputs, state):
        decoder, impute = self.decoder, self.impute
        accumulators = self._accumulators()
        lengths = ops.zeros_like(finished, dtype="int32")
        time = ops.convert_to_tensor(0, dtype="int32")

        def cond(time, acc, state, inputs, finished, lengths):
            going = ops.logical_not(ops.all(finished))
            if self.max_iter is not None:
                going = ops.logical_and(going, time < self.max_iter)
            return going

        def body(time, acc, state, inputs, finished, lengths):
            outputs, next_state, next_inputs, step_finished = decoder.step(
                time, inputs, state, self.training)
            step_finished = ops.cast(step_finished, "bool")
            own_lengths = None
            if decoder.tracks_own_finished:
                next_finished = step_finished
                own_lengths = getattr(next_state, "lengths", None)
            else:
                next_finished = ops.logical_or(step_finished, finished)
            if own_lengths is not None:
                next_lengths = ops.cast(own_lengths, "int32")
            else:
                next_lengths = ops.where(finished, lengths,
                                         ops.full_like(lengths, 1) * (time + 1))
            keras.tree.assert_same_paths(state, next_state)
            keras.tree.assert_same_paths(inputs, next_inputs)
            next_state = _like(state, next_state)
            next_inputs = _like(inputs, next_inputs)
            flat_outputs = keras.tree.flatten(outputs)
            if len(flat_outputs) != len(acc):
                raise ValueError(
                    f"The decoder's step gave {len(flat_outputs)} outputs where its output_size "
                    f"has {len(acc)}.")
            if impute:
                flat_outputs = [ops.where(_expand_as(finished, out), ops.zeros_like(out), out)
                                for out in flat_outputs]
                next_state = keras.tree.map_structure(
                    lambda new, cur: _copy_finished(finished, new, cur), next_state, state)
            if self.tflite:
                flat_outputs = [ops.reshape(out, (-1,)) for out in flat_outputs]
            acc = [_write(a, time, out) for a, out in zip(acc, flat_outputs)]
            return (time + 1, acc, next_state, next_inputs,
                    _keep_shape(next_finished, finished), _keep_shape(next_lengths, lengths))

        time, acc, state, _, _, lengths = ops.while_loop(
            cond, body, (time, accumulators, state, inputs, finished, lengths))
        flat = [self._stacked(a, time) for a in acc]
        outputs = keras.tree.pack_sequence_as(decoder.output_dtype, flat)
        try:
            outputs, state = decoder.finalize(outputs, state, lengths)
        except NotImplementedError:
            pass
        return outputs, state, lengths

    def _stacked(self, accumulator, time):
        if on_tensorflow():
            return accumulator.stack()
        steps = _concrete_int(time)
        if steps is None or self.tflite:
            return accumulator
        return accumulator[:steps]


def _write(accumulator, time, value):
    if on_tensorflow():
        return accumulator.write(time, value)
    start = [time] + [0] * rank(value)
    value = ops.cast(value, accumulator.dtype)
    return ops.slice_update(accumulator, start, ops.expand_dims(value, 0))


def _expand_as(flags, x):
    """`flags` `[batch]` (or `[batch, beam]`) with trailing axes of size 1 up to `x`'s rank."""
    return ops.reshape(flags, tuple(ops.shape(flags)) + (1,) * (rank(x) - rank(flags)))


def _copy_finished(finished, new, cur):
    """TFA's copy-through of a finished entry's state; TensorArrays and scalars pass."""
    if _is_tensor_array(cur) or rank(new) == 0:
        return new
    new = _keep_shape(new, cur)
    return ops.where(_expand_as(finished, new), cur, new)


def _keep_shape(new, old):
    """On TensorFlow graphs, gives `new` the static shape of `old` (the loop needs it)."""
    if on_tensorflow() and not _is_tensor_array(new) and hasattr(new, "set_shape"):
        if not tensorflow().executing_eagerly():
            new.set_shape(old.shape)
    return new


def _like(template, values):
    """`values` in exactly the structure (list/tuple types) of `template`."""
    flat = [_keep_shape(v, t) for v, t in zip(keras.tree.flatten(values),
                                               keras.tree.flatten(template))]
    return keras.tree.pack_sequence_as(template, flat)


def _untracked(structure):
    """Keras' tracked lists and dicts as plain ones (the backends' loops want those)."""
    if isinstance(structure, tuple) and hasattr(structure, "_fields"):
        return type(structure)(*[_untracked(x) for x in structure])
    if isinstance(structure, tuple):
        return tuple(_untracked(x) for x in structure)
    if isinstance(structure, list):
        return [_untracked(x) for x in structure]
    if isinstance(structure, dict):
        return {k: _untracked(v) for k, v in structure.items()}
    return structure


def _sizes_like(sizes, dtypes):
    """The flat list of output shapes (tuples), following the structure of `dtypes`
    (a size may be an int, a list/tuple of ints or a `tf.TensorShape`)."""
    if isinstance(dtypes, dict):
        return [s for k in sorted(dtypes) for s in _sizes_like(sizes[k], dtypes[k])]
    if isinstance(dtypes, (list, tuple)):
        if len(sizes) != len(dtypes):
            raise ValueError(f"output_size {sizes!r} does not match output_dtype {dtypes!r}")
        return [s for size, d in zip(sizes, dtypes) for s in _sizes_like(size, d)]
    if sizes is None:
        return [()]
    if isinstance(sizes, int):
        return [(sizes,)]
    if hasattr(sizes, "as_list"):
        return [tuple(sizes.as_list()) if sizes.rank is not None else ()]
    return [tuple(None if d is None else int(d) for d in sizes)]


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _static_int(x):
    if x is None or isinstance(x, int):
        return x
    return _concrete_int(x)


def _concrete_int(x):
    """`x` as a Python int when its value is known now (not a traced or symbolic tensor)."""
    if isinstance(x, int):
        return x
    if on_tensorflow():
        value = tensorflow().get_static_value(x)
        return None if value is None else int(value)
    try:
        return int(ops.convert_to_numpy(x))
    except Exception:  # a tracer (jax.jit) or symbolic tensor: not known yet
        return None


def _is_tensor_array(x):
    return on_tensorflow() and isinstance(x, tensorflow().TensorArray)


def _in_xla_context():
    if not on_tensorflow() or tensorflow().executing_eagerly():
        return False
    tf = tensorflow()
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # TensorFlow's private module moved: assume no XLA
        return False
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


class _StackedArray:
    """An eager `tf.TensorArray` carried into a `tf.function` as its stacked values."""

    def __init__(self, array):
        self.dtype = array.dtype
        self.element_shape = array.element_shape
        self.values = array.stack() if int(array.size()) else None

    def array(self):
        tf = tensorflow()
        array = tf.TensorArray(self.dtype, size=0, dynamic_size=True,
                               element_shape=self.element_shape)
        return array if self.values is None else array.unstack(self.values)


def _in_tf_function(fn, state):
    """`fn(state)` run in a `tf.function` traced for this call only (so it sees the
    current values of everything it reads); TensorArrays go in and out stacked."""
    tf = tensorflow()
    state = keras.tree.map_structure(
        lambda x: _StackedArray(x) if _is_tensor_array(x) else x, state)
    traced = {}

    def graph_fn():
        result = fn(keras.tree.map_structure(
            lambda x: x.array() if isinstance(x, _StackedArray) else x, state))
        flat = keras.tree.flatten(result)
        traced["structure"] = result
        traced["arrays"] = {i: (x.dtype, x.element_shape) for i, x in enumerate(flat)
                            if _is_tensor_array(x)}
        return [x.stack() if _is_tensor_array(x) else x for x in flat]

    flat = tf.function(graph_fn, autograph=False)()
    for i, (dtype, element_shape) in traced["arrays"].items():
        array = tf.TensorArray(dtype, size=0, dynamic_size=True, element_shape=element_shape)
        flat[i] = array.unstack(flat[i]) if flat[i].shape[0] else array
    return keras.tree.pack_sequence_as(traced["structure"], flat)


class _SymbolicStep(keras.Operation):
    def __init__(self, decoder, training):
        super().__init__()
        self.decoder = decoder
        self.training = training

    def call(self, time, inputs, state):
        return self.decoder.step(time, inputs, state, self.training)


def _build_with_a_symbolic_step(decoder, inputs, state, training):
    """Creates the weights the first step would create, outside the compiled loop (JAX
    cannot create variables while tracing a loop body): one step on symbolic values."""
    spec = keras.tree.map_structure(lambda x: keras.KerasTensor(x.shape, x.dtype),
                                    (inputs, state))
    time = keras.KerasTensor((), "int32")
    _SymbolicStep(decoder, training).compute_output_spec(time, *spec)
