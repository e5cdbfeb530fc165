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
from seqzoo.errors import ArgumentError, InputError
from seqzoo.text.specials import BOS_ID, EOS_ID, PAD_ID, UNK_ID

SOURCE_LENGTH_MULTIPLE = 8

# The search options beside method, max_length, beam_size and n_best, with their
# defaults: which search uses each is in `SearchMixin.search`.
SEARCH_OPTIONS = {
    "length_penalty": 0.0, "coverage_penalty": 0.0, "length_normalization": "gnmt",
    "temperature": 1.0, "top_k": None, "top_p": None, "min_length": 0,
    "no_repeat_ngram_size": 0, "alignments": True,
}
_BEAM_ONLY = ("length_penalty", "coverage_penalty", "length_normalization", "alignments")
_SAMPLE_ONLY = ("temperature", "top_k", "top_p")


class SearchMixin:
    """`search` and `translate` over the `encode`/`step` functions given to `_init_search`.

    A class using it also has `source_tokenizer` and `target_tokenizer`
    (or `None`) and `variables`.
    """

    def _init_search(self, encode, step, has_attention, alignment, source_mask,
                     beam_shared=()):
        # `search_function` is the uncompiled search (the SavedModel export traces it).
        self._has_attention = bool(has_attention)
        self._search = search_step_function(encode, step, has_attention, alignment, source_mask,
                                            beam_shared)
        # Traced once for every batch size and source width (TensorFlow): a file of
        # many lengths would otherwise trace the search once per width.
        self._search_fn = CompiledFunction(self._search, lambda: self.variables,
                                           lambda: self.search_jit_compile, any_shape=True)

    @property
    def search_jit_compile(self):
        """Whether TensorFlow compiles the searches with XLA (default `False`;
        the `--jit-compile` flag of `seqzoo predict` and `seqzoo eval`). On a
        CPU, XLA's greedy and beam search took 1.2-1.9x less time per batch than
        TensorFlow's graph (`docs/results/seq2seq-decoding.md`), and each new
        shape about twice as long to compile. JAX always compiles with XLA;
        PyTorch runs eagerly. Training is not affected (the model's
        `jit_compile` is Keras' own)."""
        return getattr(self, "_search_jit_compile", False)

    @search_jit_compile.setter
    def search_jit_compile(self, value):
        self._search_jit_compile = bool(value)

    @property
    def has_attention(self):
        """Whether the searches see attention (alignments, the coverage penalty)."""
        return self._has_attention

    @property
    def search_function(self):
        """The uncompiled search: `fn(source_ids, uniforms, prefix_ids=None, *, method,
        max_length, beam_size, n_best, **options) -> dict` of tensors, with every option
        of `SEARCH_OPTIONS`."""
        return self._search

    def search(self, source_ids, method="beam", beam_size=4, max_length=None, n_best=1,
               length_penalty=0.0, coverage_penalty=0.0, temperature=1.0, top_k=None,
               seed=None, top_p=None, min_length=0, no_repeat_ngram_size=0,
               length_normalization="gnmt", prefix_ids=None, alignments=True):
        """Decodes `[B, S]` source ids (compiled), returning numpy arrays.

        Args:
            source_ids: right-padded source ids.
            method: `"beam"`, `"greedy"` or `"sample"`.
            beam_size, n_best: beam search.
            length_penalty, coverage_penalty: GNMT's alpha and beta (beam search).
            length_normalization: `"gnmt"`, or `"average"` for scores per
                token (beam search; `length_penalty` then unused).
            max_length: most target tokens, `</s>` included (default
                `2 * S + 10`).
            temperature, top_k, top_p, seed: sampling (`top_p`: nucleus).
            min_length: `</s>` is banned before this many tokens (every
                method).
            no_repeat_ngram_size: `n > 0` bans tokens that would repeat an
                n-gram of the output (every method).
            prefix_ids: optional `[B, P]` target ids each output must start
                with, right padded with 0 (every method); the outputs and
                their scores include the prefix.
            alignments: beam search with attention also returns the
                attention of each hypothesis; `False` skips that work.

        Returns:
            A dict with `"ids"` `[B, n, T]` (`n = n_best` for beam search, else
            1), `"scores"` `[B, n]`, and for beam search with attention (and
            `alignments`) `"alignments"` `[B, n, T, S]`.
        """
        if method not in ("beam", "greedy", "sample"):
            raise ArgumentError("Expected method 'beam', 'greedy' or 'sample'. Received: "
                                f"method={method!r}")
        source_ids = np.asarray(source_ids, dtype="int32")
        if source_ids.ndim != 2 or source_ids.shape[1] == 0:
            raise ArgumentError(f"Expected source ids of shape [B, S]. Received: "
                                f"shape={source_ids.shape}")
        length = source_ids.shape[1]
        if max_length is None:
            max_length = default_max_length(length)
        check_positive_int("max_length", max_length)
        check_positive_int("beam_size", beam_size)
        # XLA (JAX, TensorFlow's `search_jit_compile`) compiles the search once
        # per input shape: padding the source to a multiple of 8 (masked, so the
        # results are the same) bounds the number of compilations when lengths
        # vary from call to call.
        padded = -(-length // SOURCE_LENGTH_MULTIPLE) * SOURCE_LENGTH_MULTIPLE
        source_ids = np.pad(source_ids, ((0, 0), (0, padded - length)))
        uniforms = keras.random.uniform((max_length, source_ids.shape[0]), seed=seed)
        options = {"length_penalty": float(length_penalty),
                   "coverage_penalty": float(coverage_penalty),
                   "length_normalization": length_normalization,
                   "temperature": float(temperature), "top_k": top_k,
                   "top_p": None if top_p is None else float(top_p),
                   "min_length": min_length, "no_repeat_ngram_size": no_repeat_ngram_size,
                   "alignments": bool(alignments)}
        unused = (() if method == "beam" else _BEAM_ONLY) + (
            () if method == "sample" else _SAMPLE_ONLY)
        for name in unused:  # at their defaults: one compiled function, not one per value
            options[name] = SEARCH_OPTIONS[name]
        tensors = [source_ids, uniforms]
        if prefix_ids is not None:
            prefix_ids = np.asarray(prefix_ids, dtype="int32")
            if prefix_ids.ndim != 2 or prefix_ids.shape[0] != source_ids.shape[0]:
                raise ArgumentError(f"Expected prefix ids of shape [B={source_ids.shape[0]}, P]. "
                                    f"Received: shape={prefix_ids.shape}")
            if prefix_ids.shape[1] >= max_length:
                raise ArgumentError(f"Expected prefixes shorter than max_length={max_length}. "
                                    f"Received: {prefix_ids.shape[1]} tokens")
            tensors.append(prefix_ids)
        result = self._search_fn(
            *tensors, method=method, max_length=int(max_length),
            beam_size=int(beam_size), n_best=int(n_best), **options)
        result = {k: ops.convert_to_numpy(v) for k, v in result.items()}
        if "alignments" in result:
            result["alignments"] = result["alignments"][..., :length]
        return result

    def translate(self, texts, beam_size=1, max_length=None, n_best=1, length_penalty=0.0,
                  coverage_penalty=0.0, return_scores=False, return_alignments=False,
                  replace_unk=False, prefixes=None, batch_size=None, **options):
        """Translates raw texts with the model's tokenizers.

        Args:
            texts: a list of source strings.
            beam_size: 1 for greedy search, more for beam search.
            max_length: most target tokens (default `2 * longest source + 10`, plus
                the prefixes' width).
            n_best: hypotheses per text (`<= beam_size`).
            length_penalty, coverage_penalty: GNMT penalties (beam search).
            **options: `min_length`, `no_repeat_ngram_size`,
                `length_normalization` (see `search`).
            return_scores: also return the scores.
            return_alignments: also return attention alignments
                `[n_best, T, S]` per text (attention models, beam search),
                and `"lengths"`: the tokens of each output, `</s>` excluded.
            prefixes: optional target texts, one per text (`""` for none),
                that the outputs must start with (the outputs include them).
            replace_unk: replace each `<unk>` of an output by the source
                token with the highest attention weight at that step
                (attention models whose two tokenizers are of one kind;
                decodes with beam search, width 1 being greedy).
            batch_size: decode at most this many texts per search, the texts
                in order of length (the outputs keep the order of `texts`):
                each search's texts then end at about the same step, and the
                last one is filled up to `batch_size` so that every search
                has the same batch shape. The results are those of one
                search over all texts. Default: one search over all texts.

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
            if not (return_scores or return_alignments):
                return []
            empty = {"texts": [], "scores": np.zeros((0, n_best), "float32")}
            return {**empty, "alignments": [], "lengths": []} if return_alignments else empty
        aligned = return_alignments or replace_unk
        if aligned and not self.has_attention:
            raise InputError("This model has no attention: there are no alignments "
                             f"({'replace_unk' if replace_unk else 'return_alignments'}).")
        if replace_unk and type(self.source_tokenizer) is not type(self.target_tokenizer):
            # A source token is copied as it is: a SentencePiece piece (with its "▁")
            # into words, or a word glued into pieces, would be wrong text.
            raise InputError(
                f"replace_unk copies source tokens into the output; it needs tokenizers of "
                f"one kind. Received: {type(self.source_tokenizer).__name__} (source), "
                f"{type(self.target_tokenizer).__name__} (target)")
        method = "beam" if beam_size > 1 or n_best > 1 or aligned else "greedy"
        unknown = sorted(set(options) - {"min_length", "no_repeat_ngram_size",
                                         "length_normalization"})
        if unknown:
            raise TypeError(f"translate() got unexpected keyword arguments {unknown}")
        if batch_size is not None:
            check_positive_int("batch_size", batch_size)
        prefix_ids = self._encode_prefixes(prefixes, len(encoded))
        if max_length is None:  # one for all batches: that of one search over all texts
            max_length = default_max_length(max(map(len, encoded)), (
                0 if prefix_ids is None else prefix_ids.shape[1]))
        result = self._search_texts(encoded, prefix_ids, batch_size, method=method,
                                    beam_size=beam_size, max_length=max_length, n_best=n_best,
                                    length_penalty=length_penalty,
                                    coverage_penalty=coverage_penalty, alignments=aligned,
                                    **options)
        contents = [[_content(h) for h in row] for row in result["ids"]]
        if replace_unk:
            decoded = [[self._with_unk_replaced(h, a, src) for h, a in zip(row, aligns)]
                       for row, aligns, src in zip(contents, result["alignments"], encoded)]
        else:
            decoded = [[self.target_tokenizer.decode(h) for h in row] for row in contents]
        outputs = [row[0] for row in decoded] if n_best == 1 else decoded
        if not (return_scores or return_alignments):
            return outputs
        extra = {"texts": outputs, "scores": result["scores"]}
        if return_alignments:
            extra["alignments"] = [
                row[:, :, : len(src)] for row, src in zip(result["alignments"], encoded)]
            extra["lengths"] = [[len(h) for h in row] for row in contents]
        return extra

    def _search_texts(self, encoded, prefix_ids, batch_size, **kwargs):
        """`search` over the token ids of `encoded` texts, in length-ordered batches of
        `batch_size` (see `translate`); `"alignments"` comes back as one array per text."""
        count = len(encoded)
        if batch_size is None or count <= batch_size:
            result = self.search(pad_sequences(encoded), prefix_ids=prefix_ids, **kwargs)
            if "alignments" in result:
                result["alignments"] = list(result["alignments"])
            return result
        order = sorted(range(count), key=lambda i: len(encoded[i]))
        parts = []
        for start in range(0, count, batch_size):
            rows = order[start:start + batch_size]
            rows += [rows[-1]] * (batch_size - len(rows))  # one batch shape for every search
            part = self.search(pad_sequences([encoded[i] for i in rows]),
                               prefix_ids=None if prefix_ids is None else prefix_ids[rows],
                               **kwargs)
            parts.append({key: value[:count - start] for key, value in part.items()})
        result = {key: [row for part in parts for row in part[key]] for key in parts[0]}
        back = np.argsort(order)
        result = {key: [rows[i] for i in back] for key, rows in result.items()}
        return {key: rows if key == "alignments" else np.stack(rows)
                for key, rows in result.items()}

    def _encode_prefixes(self, prefixes, count):
        """`[B, P]` ids of the target prefixes, or `None` when there are none."""
        if prefixes is None:
            return None
        if isinstance(prefixes, str) or len(prefixes) != count:
            raise InputError(f"Expected one prefix per text ({count}). Received: "
                             f"prefixes={prefixes!r:.100}")
        encoded = []
        for index, prefix in enumerate(prefixes):
            unknown = self.target_tokenizer.unknown_tokens(prefix) if prefix else []
            if unknown:
                raise InputError(f"prefixes[{index}]={prefix!r} has tokens outside the target "
                                 f"vocabulary: {unknown}")
            encoded.append(self.target_tokenizer.encode(prefix) if prefix else [])
        if not any(encoded):
            return None
        return pad_sequences(encoded)

    def _with_unk_replaced(self, ids, alignment, source_ids):
        """The text of `ids` with each `<unk>` replaced by the most attended source token."""
        tokens = [self.source_tokenizer.id_to_token(
                      source_ids[int(np.argmax(alignment[t, :len(source_ids)]))])
                  if token == UNK_ID else self.target_tokenizer.id_to_token(token)
                  for t, token in enumerate(ids)]
        return self.target_tokenizer.detokenize(tokens)


def _content(ids):
    """The generated tokens of a hypothesis: up to `</s>`, without padding."""
    ids = [int(i) for i in ids]
    ids = ids[: ids.index(EOS_ID)] if EOS_ID in ids else ids
    return [i for i in ids if i not in (PAD_ID, BOS_ID)]


def default_max_length(source_width, prefix_width=0):
    """The output steps a search allows by default: twice the source width plus 10,
    plus the width of the target prefixes."""
    return 2 * source_width + 10 + prefix_width


def search_step_function(encode, step, has_attention, alignment, source_mask,
                         beam_shared=()):
    """The body of a compiled search over any encoder-decoder (model or ensemble).

    Args:
        encode: `[B, S] ids -> state`.
        step: `([B] ids, state) -> ([B, V] logits, state)`.
        has_attention: whether `alignment(state)` gives the attention `[B, S]`.
        alignment, source_mask: `state -> [B, S]` attention and source mask.
        beam_shared: state entries `step` accepts with one row per item while
            the tokens have one row per beam (`beam_search`'s `shared`).

    Returns:
        `fn(source_ids, uniforms, prefix_ids=None, *, method, max_length, beam_size,
        n_best, **options) -> dict` of `"ids"`, `"scores"` and (beam search with
        alignments) `"alignments"` (options: `SEARCH_OPTIONS`, all of them given),
        to be wrapped in a `CompiledFunction`.
    """

    def search(source_ids, uniforms, prefix_ids=None, *, method, max_length, beam_size, n_best,
               **options):
        state = encode(source_ids)
        start = ops.full((ops.shape(source_ids)[0],), BOS_ID, "int32")
        constraints = {"min_length": options["min_length"],
                       "no_repeat_ngram_size": options["no_repeat_ngram_size"],
                       "prefix": prefix_ids}
        if method == "beam":
            # The attention is needed for the alignments asked for, or the coverage penalty.
            wanted = bool(options.get("alignments", True))
            attending = has_attention and (wanted or options["coverage_penalty"] > 0)
            found = beam_search(
                step, start, state, beam_size=beam_size, max_length=max_length,
                length_penalty=options["length_penalty"],
                coverage_penalty=options["coverage_penalty"],
                length_normalization=options["length_normalization"],
                n_best=n_best, alignment_fn=alignment if attending else None,
                source_mask=source_mask(state) if attending else None,
                shared=beam_shared, return_alignments=wanted, **constraints)
            # What `search` returns: not the final state, log-probabilities or lengths.
            return {key: found[key] for key in ("ids", "scores", "alignments") if key in found}
        if method == "greedy":
            ids, scores, _ = greedy_search(step, start, state, max_length, **constraints)
        else:
            ids, scores, _ = sample(step, start, state, max_length, uniforms,
                                    temperature=options["temperature"], top_k=options["top_k"],
                                    top_p=options["top_p"], **constraints)
        return {"ids": ids[:, None], "scores": scores[:, None]}

    return search
