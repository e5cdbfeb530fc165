"""Keep parts of a model fixed for the first steps of fine-tuning."""

import keras
from keras import ops

from seqzoo.errors import InputError

GROUPS = ("embeddings",)


def _as_names(parts):
    if isinstance(parts, str):
        parts = (parts,)
    parts = tuple(parts)
    if not parts or not all(isinstance(p, str) for p in parts):
        raise InputError(f"Expected part names such as ('encoder',) or ('embeddings',). "
                         f"Received: parts={parts!r}")
    return parts


def frozen_variables(model, parts):
    """The trainable variables of the named parts of a model.

    Args:
        model: a seqzoo model (or any Keras model).
        parts: a name or a list of names: `"embeddings"` (every
            `TokenEmbedding`: source, target, or the single embedding; a tied
            output layer shares the target embedding's matrix), a key of the
            model's parts (for a `Seq2Seq`: `"source_embedding"`,
            `"target_embedding"`, `"encoder"` (the encoder RNN stack),
            `"bridge"`, `"decoder"`, `"projection"`, `"head"`), or the name
            of one of its layers.

    Returns:
        A list of variables, each once.

    Raises:
        InputError: a name matches nothing; the message lists the choices.
    """
    from seqzoo.layers import TokenEmbedding

    own_parts = getattr(model, "parts", {})
    layers = []
    for name in _as_names(parts):
        if name == "embeddings":
            found = [layer for layer in model.layers if isinstance(layer, TokenEmbedding)]
        elif name in own_parts:
            found = [own_parts[name]]
        else:
            found = [layer for layer in model.layers if layer.name == name]
        if not found:
            choices = sorted({*GROUPS, *own_parts, *(layer.name for layer in model.layers)})
            raise InputError(f"{type(model).__name__} has no part {name!r} to freeze; "
                             f"expected one of {choices}")
        layers += found
    variables, seen = [], set()
    for layer in layers:
        for variable in layer.trainable_variables:
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


class FreezeFor(keras.callbacks.Callback):
    """Keeps parts of the model unchanged for the first `steps` training steps.

    After each of the first `steps` optimizer steps the frozen variables get
    their values from the start of training back; after that they train like
    the others. Restoring values, rather than switching `layer.trainable`,
    needs no recompiling (Keras 3 captures the trainable variables in the
    compiled train function), works on every backend and leaves the model
    and its saved files as they are. The optimizer still sees the frozen
    variables' gradients in its moment estimates; only their values stay.

    Steps are counted across epochs and `fit` calls (with
    `steps_per_execution > 1`, in whole executions).

    Args:
        steps: the number of steps to freeze for, `>= 0`.
        parts: what to freeze; see `frozen_variables` (e.g. `("encoder",)`
            or `("embeddings",)`).

    Example:

    ```python
    model, report = swap_vocabulary(old_model, tokenizer=new_tokenizer)
    model.compile()
    model.fit(data, epochs=3, callbacks=[FreezeFor(200, parts="encoder")])
    ```
    """

    def __init__(self, steps, parts=("encoder",)):
        super().__init__()
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise InputError(f"Expected steps to be an integer >= 0. Received: steps={steps!r}")
        self.steps = steps
        self.parts = _as_names(parts)
        self.steps_done = 0
        self._variables = None
        self._values = None
        self._begin = 0

    @property
    def frozen(self):
        """Whether the parts are still frozen."""
        return self.steps_done < self.steps

    def on_train_begin(self, logs=None):
        self._variables = frozen_variables(self.model, self.parts)
        if self.frozen:
            self._values = [ops.copy(variable.value) for variable in self._variables]

    def on_train_batch_begin(self, batch, logs=None):
        self._begin = batch

    def on_train_batch_end(self, batch, logs=None):
        if not self.frozen:
            return
        self.steps_done += batch - self._begin + 1
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            # JAX trains on a copy of the variables; write it back, and the
            # trainer reads the restored variables before the next step.
            sync()
        for variable, value in zip(self._variables, self._values):
            # A copy: JAX may donate (delete) the variable's buffer next step.
            variable.assign(ops.copy(value))
        if not self.frozen:
            self._values = None

    def on_train_end(self, logs=None):
        self._values = None
