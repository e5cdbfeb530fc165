"""`tfa.seq2seq.AttentionWrapperState`: the state of an `AttentionWrapper`, with TFA's fields."""

import collections

import keras

from seqzoo.tfa.seq2seq._common import is_tensor_array


class AttentionWrapperState(collections.namedtuple(
        "AttentionWrapperState",
        ("cell_state", "attention", "alignments", "alignment_history", "attention_state"))):
    """The state of an `AttentionWrapper`, with TFA's fields.

    Fields:
        cell_state: the wrapped cell's state.
        attention: `[batch_size, attention_layer_size]`, the attention
            emitted at the previous step.
        alignments: `[batch_size, memory_time]` (a tuple with several
            mechanisms), the alignments of the previous step.
        alignment_history: with `alignment_history=True` (TensorFlow), a
            `tf.TensorArray` per mechanism whose `stack()` is
            `[time, batch_size, memory_time]`; else `()`.
        attention_state: the mechanisms' states (the previous alignments).
    """

    def clone(self, **kwargs):
        """A copy with the fields in `kwargs` replaced; tensors must keep their static shapes."""

        def with_same_shape(old, new):
            if hasattr(old, "shape") and hasattr(new, "shape") and not is_tensor_array(old):
                old_shape, new_shape = tuple(old.shape), tuple(new.shape)
                if (len(old_shape) != len(new_shape) or any(
                        a is not None and b is not None and a != b
                        for a, b in zip(old_shape, new_shape))):
                    raise ValueError(
                        "The shape of the AttentionWrapperState is expected to be same as the "
                        f"one to clone. self.shape: {old_shape}, input.shape: {new_shape}")
            return new

        replaced = self._replace(**kwargs)
        return AttentionWrapperState(*[
            keras.tree.map_structure(with_same_shape, old, new)
            if keras.tree.is_nested(old) else with_same_shape(old, new)
            for old, new in zip(self, replaced)
        ])


def _plain(structure):
    """Keras' tracked lists and tuples of a structure as plain lists (the loops of the
    backends accept only those)."""
    if isinstance(structure, AttentionWrapperState):
        return AttentionWrapperState(*[_plain(x) for x in structure])
    if isinstance(structure, (list, tuple)):
        return [_plain(x) for x in structure]
    return structure
