"""`tfa.seq2seq` decoders' interface and `dynamic_decode`, on Keras 3.

`dynamic_decode` runs `decoder.step` in one `keras.ops.while_loop`. On
TensorFlow the outputs gather in `tf.TensorArray`s, so `maximum_iterations`
may be `None`; called eagerly, the loop runs in a `tf.function` traced for that
call only (attention mechanisms keep their memory as Python attributes: a
cached trace would decode with a stale memory). Elsewhere (JAX)
`maximum_iterations` is required: eagerly the while loop writes the outputs
into `[maximum_iterations, ...]` buffers, cut to the steps run; in training and
inside `jax.jit` an `ops.scan` of `maximum_iterations` steps emits them (zeros
after the last), which JAX can differentiate.

Longer than 400 lines: TFA's `decoder` module (the interface, the layer and
`dynamic_decode`) with the loop's two forms, TensorArrays and a per-call
`tf.function` on TensorFlow, buffers, a scan and a symbolic first step elsewhere,
which share their helpers.
"""

import abc
import math

import keras
import numpy as np
from keras import ops

from seqzoo.tfa.seq2seq._common import (
    is_tensor_array,
    on_tensorflow,
    rank,
    require_tensorflow,
    tensorflow,
    transpose_batch_time,
)

_NUMBERS = (int, float, np.ndarray, np.generic)


class _DecoderInterface:
    """What `dynamic_decode` reads besides `initialize` and `step`: `batch_size`;
    `output_size`, the per-step output shapes without the batch dimension (ints,
    tuples of ints or `tf.TensorShape`s) and `output_dtype`, both in the structure
    of the step's outputs; the optional `finalize(outputs, final_state,
    sequence_lengths) -> (outputs, state)`; `tracks_own_finished`, whether the
    decoder keeps its own finished flags (beam search reorders the entries, so
    `dynamic_decode` must not OR them)."""

    @property
    def batch_size(self):
        raise NotImplementedError

    @property
    def output_size(self):
        raise NotImplementedError

    @property
    def output_dtype(self):
        raise NotImplementedError

    def finalize(self, outputs, final_state, sequence_lengths):
        raise NotImplementedError

    @property
    def tracks_own_finished(self):
        return False


class Decoder(_DecoderInterface, metaclass=abc.ABCMeta):
    """The interface of a decoder that `dynamic_decode` runs, as TFA's."""

    @abc.abstractmethod
    def initialize(self, name=None):
        """Returns `(finished, initial_inputs, initial_state)`."""

    @abc.abstractmethod
    def step(self, time, inputs, state, training=None, name=None):
        """Returns `(outputs, next_state, next_inputs, finished)`."""


class BaseDecoder(_DecoderInterface, keras.layers.Layer):
    """A decoder that is a Keras layer: calling it runs `dynamic_decode`.

    Args:
        output_time_major: return `[time, batch, ...]` outputs.
        impute_finished: zero the outputs of finished entries and keep their state.
        maximum_iterations: the most steps (required off TensorFlow).
        parallel_iterations, swap_memory: TFA's (TensorFlow loop settings, not used).
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: the first argument of `initialize` (inputs, an embedding, ...).
        initial_state: the initial state of the cell.
        training: passed to the cell.
        **kwargs: more `initialize` arguments (`sequence_length`, `start_tokens`, ...).

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

    def build(self, input_shape=None):
        # The sub-layers are built in `initialize`, from what the sampler gives.
        self.built = True

    def __call__(self, *args, **kwargs):
        # Checked before Keras' __call__, which would add lines to the message.
        if self.maximum_iterations is None:
            _require_unbounded_loop()
        # Keras' __call__ would try to convert a state's TensorArrays (alignment history).
        if any(is_tensor_array(x) for x in keras.tree.flatten((args, kwargs))):
            return _as_written(self.call)(*args, **kwargs)
        # Keras' __call__ refuses Python numbers next to tensors in **kwargs
        # (`start_tokens=tensor, end_token=2`): numbers and arrays become tensors.
        kwargs = {k: v if k == "training" else keras.tree.map_structure(
            lambda x: ops.convert_to_tensor(x) if isinstance(x, _NUMBERS) else x, v)
            for k, v in kwargs.items()}
        return super().__call__(*args, **kwargs)

    def call(self, inputs, initial_state=None, training=None, **kwargs):
        return dynamic_decode(
            self, output_time_major=self.output_time_major,
            impute_finished=self.impute_finished, maximum_iterations=self.maximum_iterations,
            training=training, decoder_init_input=inputs,
            decoder_init_kwargs=dict(kwargs, initial_state=initial_state))

    def initialize(self, inputs, initial_state=None, **kwargs):  # -> (finished, inputs, state)
        raise NotImplementedError

    def step(self, time, inputs, state, training):  # -> (outputs, state, inputs, finished)
        raise NotImplementedError

    def get_config(self):
        maximum_iterations = _concrete_int(self.maximum_iterations)
        return dict(super().get_config(), output_time_major=self.output_time_major,
                    impute_finished=self.impute_finished, maximum_iterations=maximum_iterations,
                    parallel_iterations=self.parallel_iterations, swap_memory=self.swap_memory)


def dynamic_decode(decoder, output_time_major=False, impute_finished=False,
                   maximum_iterations=None, parallel_iterations=32, swap_memory=False,
                   training=None, scope=None, enable_tflite_convertible=False, **kwargs):
    """Runs a decoder's steps until every entry is finished, as TFA's `dynamic_decode`.

    Args:
        decoder: a `Decoder` or a `BaseDecoder`.
        output_time_major: return `[time, batch, ...]` outputs.
        impute_finished: zero the outputs of finished entries, keep their state.
        maximum_iterations: a positive int scalar, the most steps. Required off
            TensorFlow and under XLA.
        parallel_iterations, swap_memory, scope: TFA's (not used).
        training: passed to `decoder.step`.
        enable_tflite_convertible: TFA's TFLite mode: a batch of 1, each step's
            outputs flat, `maximum_iterations` steps (needed).
        **kwargs: `decoder_init_input`, `decoder_init_kwargs`: the arguments of a
            `BaseDecoder`'s `initialize`.

    Returns:
        `(final_outputs, final_state, final_sequence_lengths)`: the outputs
        `[batch, time, ...]` (or time major) in the step's structure, the last
        (or `finalize`d) state, and the `[batch]` int32 step count of each entry.
    """
    return _as_written(_dynamic_decode)(
        decoder, output_time_major, impute_finished, maximum_iterations, training,
        enable_tflite_convertible, kwargs)


def _as_written(fn):
    """`fn` kept from AutoGraph (inside a user's `tf.function`): the loop is already a
    `while_loop`, and converting the decoder's code would only slow tracing down."""
    return tensorflow().autograph.experimental.do_not_convert(fn) if on_tensorflow() else fn


def _dynamic_decode(decoder, output_time_major, impute_finished, max_iter, training, tflite,
                    kwargs):
    if not isinstance(decoder, (Decoder, BaseDecoder)):
        raise TypeError("Expected `decoder` to be a tfa.seq2seq Decoder or BaseDecoder. "
                        f"Received: decoder={decoder!r}")
    xla = _in_xla_context()
    static_max = None
    if max_iter is not None:
        if np.ndim(max_iter) != 0:
            raise ValueError("maximum_iterations must be a scalar")
        static_max = _concrete_int(max_iter)  # before conversion: in a JAX trace, a tracer
        max_iter = ops.convert_to_tensor(max_iter, dtype="int32")
        if static_max is not None and static_max <= 0:
            raise ValueError("maximum_iterations should be greater than 0. "
                             f"Received: maximum_iterations={static_max}")
    elif xla or tflite:
        raise ValueError("maximum_iterations is required for XLA compilation." if xla else
                         "maximum_iterations is required with enable_tflite_convertible=True.")
    else:
        _require_unbounded_loop()
    if not on_tensorflow() and static_max is None:
        raise ValueError("Off TensorFlow, maximum_iterations must be a Python int or a concrete "
                         f"scalar. Received: maximum_iterations={max_iter!r}")
    if isinstance(decoder, Decoder):
        initial = decoder.initialize()
    else:
        initial = decoder.initialize(kwargs.pop("decoder_init_input", None),
                                     **(kwargs.pop("decoder_init_kwargs", None) or {}))
    finished, inputs, state = (_untracked(x) for x in initial)
    finished = ops.cast(finished, "bool")
    if max_iter is not None:
        finished = ops.logical_or(finished, max_iter <= 0)

    # Off TensorFlow, traced values (jax.jit, jax.grad) or training decode a fixed number
    # of steps: JAX differentiates that loop, not a while loop.
    eager = on_tensorflow() or _is_concrete((finished, inputs, state))
    fixed_steps = not on_tensorflow() and (bool(training) or not eager)

    def run(state):
        return _loop(decoder, finished, inputs, state, max_iter, static_max, impute_finished,
                     training, fixed_size=xla or tflite, tflite=tflite, fixed_steps=fixed_steps)

    if on_tensorflow() and tensorflow().executing_eagerly():
        outputs, state, lengths = _in_tf_function(run, state)
    else:
        if not on_tensorflow() and eager:
            _build_with_a_symbolic_step(decoder, inputs, state, training)
        outputs, state, lengths = run(state)
    if not output_time_major:
        if tflite:
            outputs = keras.tree.map_structure(lambda x: ops.expand_dims(x, 1), outputs)
        outputs = keras.tree.map_structure(transpose_batch_time, outputs)
    return outputs, state, lengths


def _require_unbounded_loop():
    require_tensorflow(
        "Decoding without maximum_iterations",
        "Pass maximum_iterations (to the decoder or dynamic_decode) to decode on it.")


def _accumulators(decoder, max_iter, static_max, fixed_size, tflite):
    """Per output, a TensorArray (TensorFlow) or a `[maximum_iterations, ...]` buffer."""
    dtypes = decoder.output_dtype
    shapes = _sizes_like(decoder.output_size, dtypes)
    dtypes = [keras.backend.standardize_dtype(d) for d in keras.tree.flatten(dtypes)]
    batch = _concrete_int(decoder.batch_size)
    if tflite and batch not in (None, 1):
        raise ValueError(f"TFLite conversion requires a batch size of 1. Received: {batch}")
    shapes = [(math.prod(s),) if tflite else (batch,) + s for s in shapes]
    if on_tensorflow():
        return [tensorflow().TensorArray(d, size=max_iter if fixed_size else 0,
                                         dynamic_size=not fixed_size, element_shape=s)
                for s, d in zip(shapes, dtypes)]
    if any(dim is None for s in shapes for dim in s):
        raise ValueError("Off TensorFlow, the decoder's batch size and output sizes must be "
                         f"static. Received: output shapes {shapes}")
    return [ops.zeros((static_max,) + s, d) for s, d in zip(shapes, dtypes)]


def _loop(decoder, finished, inputs, state, max_iter, static_max, impute, training,
          fixed_size, tflite, fixed_steps):
    """The decoding while-loop, then `finalize`: `(outputs, state, lengths)`, time major."""

    def cond(time, acc, state, inputs, finished, lengths):
        going = ops.logical_not(ops.all(finished))
        return going if max_iter is None else ops.logical_and(going, time < max_iter)

    def advance(time, state, inputs, finished, lengths):
        """One step: the flat outputs, then the next `(time, state, inputs, finished, lengths)`."""
        outputs, next_state, next_inputs, step_finished = decoder.step(
            time, inputs, state, training)
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
            next_lengths = ops.where(finished, lengths, ops.full_like(lengths, 1) * (time + 1))
        keras.tree.assert_same_paths(state, next_state)
        keras.tree.assert_same_paths(inputs, next_inputs)
        next_state, next_inputs = _like(state, next_state), _like(inputs, next_inputs)
        flat_outputs = keras.tree.flatten(outputs)
        if len(flat_outputs) != len(dtypes):
            raise ValueError(f"The decoder's step gave {len(flat_outputs)} outputs where its "
                             f"output_size has {len(dtypes)}.")
        if impute:
            flat_outputs = [ops.where(_expand_as(finished, out), ops.zeros_like(out), out)
                            for out in flat_outputs]
            next_state = keras.tree.map_structure(
                lambda new, cur: _copy_finished(finished, new, cur), next_state, state)
        if tflite:
            flat_outputs = [ops.reshape(out, (-1,)) for out in flat_outputs]
        return flat_outputs, (time + 1, next_state, next_inputs,
                              _keep_shape(next_finished, finished),
                              _keep_shape(next_lengths, lengths))

    dtypes = [keras.backend.standardize_dtype(d)
              for d in keras.tree.flatten(decoder.output_dtype)]
    start = (ops.convert_to_tensor(0, dtype="int32"), state, inputs, finished,
             ops.zeros_like(finished, dtype="int32"))
    if not fixed_steps:
        def body(time, acc, *loop_vars):
            flat_outputs, (time, *loop_vars) = advance(time, *loop_vars)
            return (time, [_write(a, time - 1, out) for a, out in zip(acc, flat_outputs)],
                    *loop_vars)

        accumulators = _accumulators(decoder, max_iter, static_max, fixed_size, tflite)
        time, acc, state, _, _, lengths = ops.while_loop(
            cond, body, (start[0], accumulators, *start[1:]))
    else:
        # A scan of `maximum_iterations` steps that emits each step's outputs (zeros after
        # the end, where the steps change nothing): no buffer rides in the carry, so
        # differentiating the loop does not copy `[maximum_iterations, ...]` buffers per step.
        def scan_step(loop_vars, _):
            going = cond(loop_vars[0], None, *loop_vars[1:])
            flat_outputs, new = advance(*loop_vars)
            new = keras.tree.map_structure(lambda n, o: ops.where(going, n, o), new, loop_vars)
            return new, [ops.where(going, ops.cast(out, d), ops.zeros((), d))
                         for out, d in zip(flat_outputs, dtypes)]

        (time, state, _, _, lengths), acc = ops.scan(scan_step, start, length=static_max)
    steps = None if tflite else _concrete_int(time)
    flat = [a.stack() if on_tensorflow() else a if steps is None else a[:steps] for a in acc]
    outputs = keras.tree.pack_sequence_as(decoder.output_dtype, flat)
    try:
        outputs, state = decoder.finalize(outputs, state, lengths)
    except NotImplementedError:
        pass
    return outputs, state, lengths


def _write(accumulator, time, value):
    if on_tensorflow():
        return accumulator.write(time, value)
    value = ops.expand_dims(ops.cast(value, accumulator.dtype), 0)
    return ops.slice_update(accumulator, [time] + [0] * (rank(value) - 1), value)


def _expand_as(flags, x):
    """`flags` `[batch]` (or `[batch, beam]`) with trailing axes of size 1 up to `x`'s rank."""
    return ops.reshape(flags, tuple(ops.shape(flags)) + (1,) * (rank(x) - rank(flags)))


def _copy_finished(finished, new, cur):
    """TFA's copy-through of a finished entry's state; TensorArrays and scalars pass."""
    if is_tensor_array(cur) or rank(new) == 0:
        return new
    return ops.where(_expand_as(finished, new), cur, _keep_shape(new, cur))


def _keep_shape(new, old):
    """On TensorFlow graphs, gives `new` the static shape of `old` (the loop needs it)."""
    if (on_tensorflow() and not is_tensor_array(new) and hasattr(new, "set_shape")
            and not tensorflow().executing_eagerly()):
        new.set_shape(old.shape)
    return new


def _like(template, values):
    """`values` in exactly the structure (list/tuple types) of `template`."""
    flat = [_keep_shape(v, t)
            for v, t in zip(keras.tree.flatten(values), keras.tree.flatten(template))]
    return keras.tree.pack_sequence_as(template, flat)


def _untracked(x):
    """Keras' tracked lists and dicts as plain ones (the backends' loops want those)."""
    if isinstance(x, dict):
        return {k: _untracked(v) for k, v in x.items()}
    if not isinstance(x, (list, tuple)):
        return x
    items = [_untracked(v) for v in x]
    if hasattr(x, "_fields"):
        return type(x)(*items)
    return tuple(items) if isinstance(x, tuple) else items


def _sizes_like(sizes, dtypes):
    """The flat output shapes (tuples), following the structure of `dtypes`."""
    if isinstance(dtypes, dict):
        return [s for k in sorted(dtypes) for s in _sizes_like(sizes[k], dtypes[k])]
    if isinstance(dtypes, (list, tuple)):
        if len(sizes) != len(dtypes):
            raise ValueError(f"output_size {sizes!r} does not match output_dtype {dtypes!r}")
        return [s for size, d in zip(sizes, dtypes) for s in _sizes_like(size, d)]
    if sizes is None or getattr(sizes, "rank", 0) is None:
        return [()]
    if isinstance(sizes, (int, np.integer)):
        return [(int(sizes),)]
    return [tuple(None if d is None else int(d) for d in sizes)]


def _concrete_int(x):
    """`x` as a Python int when its value is known now (not a traced or symbolic tensor)."""
    if x is None or isinstance(x, (int, np.integer)):
        return None if x is None else int(x)
    if on_tensorflow():
        value = tensorflow().get_static_value(x)
        return None if value is None else int(value)
    try:
        return int(ops.convert_to_numpy(x))
    except Exception:  # a tracer (jax.jit) or symbolic tensor: not known yet
        return None


def _is_concrete(structure):
    """Whether the tensors' values are known now (not traced by JAX or symbolic)."""
    try:
        for x in keras.tree.flatten(structure):
            ops.convert_to_numpy(ops.reshape(x, (-1,))[:1])
    except Exception:  # a tracer or a symbolic tensor
        return False
    return True


def _in_xla_context():
    if not on_tensorflow() or tensorflow().executing_eagerly():
        return False
    try:
        from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext
    except ImportError:  # TensorFlow's private module moved: assume no XLA
        return False
    return bool(GraphOrParentsInXlaContext(tensorflow().compat.v1.get_default_graph()))


class _StackedArray:
    """An eager `tf.TensorArray` carried into a `tf.function` as its stacked values."""

    def __init__(self, array):
        self.dtype, self.element_shape = array.dtype, array.element_shape
        self.values = array.stack() if int(array.size()) else None

    def array(self):
        array = tensorflow().TensorArray(self.dtype, size=0, dynamic_size=True,
                                         element_shape=self.element_shape)
        return array if self.values is None else array.unstack(self.values)


def _in_tf_function(fn, state):
    """`fn(state)` in a `tf.function` traced for this call only (it reads the current
    values of everything); TensorArrays go in and come out stacked."""
    tf = tensorflow()
    state = keras.tree.map_structure(
        lambda x: _StackedArray(x) if is_tensor_array(x) else x, state)
    traced = {}

    def graph_fn():
        result = fn(keras.tree.map_structure(
            lambda x: x.array() if isinstance(x, _StackedArray) else x, state))
        flat = keras.tree.flatten(result)
        traced["structure"] = result
        traced["arrays"] = {i: (x.dtype, x.element_shape) for i, x in enumerate(flat)
                            if is_tensor_array(x)}
        return [x.stack() if is_tensor_array(x) else x for x in flat]

    flat = tf.function(graph_fn, autograph=False)()
    for i, (dtype, element_shape) in traced["arrays"].items():
        array = tf.TensorArray(dtype, size=0, dynamic_size=True, element_shape=element_shape)
        flat[i] = array.unstack(flat[i]) if flat[i].shape[0] else array
    return keras.tree.pack_sequence_as(traced["structure"], flat)


class _SymbolicStep(keras.Operation):
    def __init__(self, decoder, training):
        super().__init__()
        self.decoder, self.training = decoder, training

    def call(self, time, inputs, state):
        return self.decoder.step(time, inputs, state, self.training)


def _build_with_a_symbolic_step(decoder, inputs, state, training):
    """Creates the weights a first step would create, before the loop (JAX cannot create
    variables while tracing a loop body): one step on symbolic values. Only for eager
    calls: traced ones (`jax.jit`, Keras' symbolic build) create variables deferred."""
    spec = keras.tree.map_structure(lambda x: keras.KerasTensor(x.shape, x.dtype),
                                    (inputs, state))
    _SymbolicStep(decoder, training).compute_output_spec(keras.KerasTensor((), "int32"), *spec)
