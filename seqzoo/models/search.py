"""The search surface of encoder-decoders: `search` and `translate`, written once.

`Seq2Seq` and `Seq2SeqEnsemble` both decode through `SearchMixin`: each
gives its `encode` and `step` functions (`_init_search`), and gets a
compiled greedy, beam and sampling search over them with the same keywords.
"""

import keras
import numpy as np
from keras import ops

from seqzoo.checks import check_positive_int
from seqzoo.data.padding import pad_sequences
from seqzoo.decoding import CompiledFunction, beam_search, greedy_search, sample
from seqzoo.errors import InputError
from seqzoo.text.specials import BOS_ID

SOURCE_LENGTH_MULTIPLE = 8


class SearchMixin:
    """`search` and `translate` over the `encode`/`step` functions given to `_init_search`.

    A class using it also has `source_tokenizer` and `target_tokenizer`
    (or `None`) and `variables`.
    """

    def _init_search(self, encode, step, has_attention, alignment, source_mask):
        # `search_function` is the uncompiled search (the SavedModel export traces it).
        self._search = search_step_function(encode, step, has_attention, alignment, source_mask)
        self._search_fn = CompiledFunction(self._search, lambda: self.variables)

    @property
    def search_function(self):
        """The uncompiled search: `fn(source_ids, uniforms, method, max_length, beam_size,
        n_best, length_penalty, coverage_penalty, temperature, top_k) -> dict` of tensors."""
        return self._search

    def search(self, source_ids, method="beam", beam_size=4, max_length=None, n_best=1,
               length_penalty=0.0, coverage_penalty=0.0, temperature=1.0, top_k=None,
               seed=None):
        """Decodes `[B, S]` source ids (compiled), returning numpy arrays.

        Args:
            source_ids: right-padded source ids.
            method: `"beam"`, `"greedy"` or `"sample"`.
            beam_size, n_best, length_penalty, coverage_penalty: beam search.
            max_length: most target tokens, `</s>` included (default
                `2 * S + 10`).
            temperature, top_k, seed: sampling.

        Returns:
            A dict with `"ids"` `[B, n, T]` (`n = n_best` for beam search, else
            1), `"scores"` `[B, n]`, and for beam search with attention
            `"alignments"` `[B, n, T, S]`.
        """
        if method not in ("beam", "greedy", "sample"):
            raise ValueError("Expected method 'beam', 'greedy' or 'sample'. Received: "
                             f"method={method!r}")
        source_ids = np.asarray(source_ids, dtype="int32")
        if source_ids.ndim != 2 or source_ids.shape[1] == 0:
            raise ValueError(f"Expected source ids of shape [B, S]. Received: "
                             f"shape={source_ids.shape}")
        length = source_ids.shape[1]
        if max_length is None:
            max_length = 2 * length + 10
        check_positive_int("max_length", max_length)
        check_positive_int("beam_size", beam_size)
        # The search compiles once per input shape: padding the source to a
        # multiple of 8 (masked, so the results are the same) bounds the
        # number of compilations when lengths vary from call to call.
        padded = -(-length // SOURCE_LENGTH_MULTIPLE) * SOURCE_LENGTH_MULTIPLE
        source_ids = np.pad(source_ids, ((0, 0), (0, padded - length)))
        uniforms = keras.random.uniform((max_length, source_ids.shape[0]), seed=seed)
        result = self._search_fn(
            source_ids, uniforms, method=method, max_length=int(max_length),
            beam_size=int(beam_size), n_best=int(n_best), length_penalty=float(length_penalty),
            coverage_penalty=float(coverage_penalty), temperature=float(temperature),
            top_k=top_k)
        result = {k: ops.convert_to_numpy(v) for k, v in result.items()}
        if "alignments" in result:
            result["alignments"] = result["alignments"][..., :length]
        return result

    def translate(self, texts, beam_size=1, max_length=None, n_best=1, length_penalty=0.0,
                  coverage_penalty=0.0, return_scores=False, return_alignments=False):
        """Translates raw texts with the model's tokenizers.

        Args:
            texts: a list of source strings.
            beam_size: 1 for greedy search, more for beam search.
            max_length: most target tokens (default `2 * longest source + 10`).
            n_best: hypotheses per text (`<= beam_size`).
            length_penalty, coverage_penalty: GNMT penalties (beam search).
            return_scores: also return the scores.
            return_alignments: also return attention alignments
                `[n_best, T, S]` per text (attention models, beam search).

        Returns:
            A list with one string per text (`n_best == 1`) or one list of
            `n_best` strings; with `return_scores`/`return_alignments` a dict
            with `"texts"`, `"scores"`, `"alignments"`.
        """
        if self.source_tokenizer is None or self.target_tokenizer is None:
            raise ValueError("translate() needs source_tokenizer and target_tokenizer; "
                             "use search() with token ids instead.")
        if isinstance(texts, str):
            raise TypeError("Expected a list of texts. Received: a single string")
        encoded = []
        for index, text in enumerate(texts):
            unknown = self.source_tokenizer.unknown_tokens(text)
            if unknown:
                raise InputError(f"texts[{index}]={text!r} has tokens outside the source "
                                 f"vocabulary: {unknown}")
            ids = self.source_tokenizer.encode(text)
            if not ids:
                raise InputError(f"Expected non-empty texts. Received: texts[{index}]={text!r}")
            encoded.append(ids)
        if not encoded:
            return []
        method = "beam" if beam_size > 1 or n_best > 1 or return_alignments else "greedy"
        result = self.search(pad_sequences(encoded), method=method, beam_size=beam_size,
                             max_length=max_length, n_best=n_best,
                             length_penalty=length_penalty, coverage_penalty=coverage_penalty)
        decoded = [[self.target_tokenizer.decode(h) for h in row] for row in result["ids"]]
        outputs = [row[0] for row in decoded] if n_best == 1 else decoded
        if not (return_scores or return_alignments):
            return outputs
        extra = {"texts": outputs, "scores": result["scores"]}
        if return_alignments:
            if "alignments" not in result:
                raise ValueError("This model has no attention: there are no alignments.")
            extra["alignments"] = [
                row[:, :, : len(src)] for row, src in zip(result["alignments"], encoded)]
        return extra


def search_step_function(encode, step, has_attention, alignment, source_mask):
    """The body of a compiled search over any encoder-decoder (model or ensemble).

    Args:
        encode: `[B, S] ids -> state`.
        step: `([B] ids, state) -> ([B, V] logits, state)`.
        has_attention: whether `alignment(state)` gives the attention `[B, S]`.
        alignment, source_mask: `state -> [B, S]` attention and source mask.

    Returns:
        `fn(source_ids, uniforms, method, max_length, beam_size, n_best,
        length_penalty, coverage_penalty, temperature, top_k) -> dict`, to be
        wrapped in a `CompiledFunction` and called through `run_search`.
    """

    def search(source_ids, uniforms, method, max_length, beam_size, n_best,
               length_penalty, coverage_penalty, temperature, top_k):
        state = encode(source_ids)
        start = ops.full((ops.shape(source_ids)[0],), BOS_ID, "int32")
        if method == "beam":
            return beam_search(
                step, start, state, beam_size=beam_size, max_length=max_length,
                length_penalty=length_penalty, coverage_penalty=coverage_penalty,
                n_best=n_best, alignment_fn=alignment if has_attention else None,
                source_mask=source_mask(state) if has_attention else None)
        if method == "greedy":
            ids, scores, _ = greedy_search(step, start, state, max_length)
        else:
            ids, scores, _ = sample(step, start, state, max_length, uniforms,
                                    temperature=temperature, top_k=top_k)
        return {"ids": ids[:, None], "scores": scores[:, None]}

    return search
