"""`seqzoo eval`: score a saved seq2seq model on parallel files."""

from seqzoo.cli.common import (
    TRANSLATE_BATCH,
    add_decoding_arguments,
    check_known,
    check_not_empty,
    decoding_options,
    load_seq2seq,
    positive_int,
    read_texts,
    translate_all,
)
from seqzoo.errors import InputError


def run(args):
    """Translates `--source` and scores it against `--target`."""
    import numpy as np

    from seqzoo.data import decoder_io, pad_sequences
    from seqzoo.metrics import character_error_rate, word_error_rate
    from seqzoo.text import CharTokenizer

    model = load_seq2seq(args.model)
    model.search_jit_compile = args.jit_compile
    options = decoding_options(args, model, beam=args.beam_size > 1)
    sources = read_texts(args.source, "source file")
    targets = read_texts(args.target, "target file")
    if len(sources) != len(targets):
        raise InputError(f"{args.source} has {len(sources)} lines but {args.target} has "
                         f"{len(targets)}; expected aligned files")
    if not sources:
        raise InputError(f"{args.source}: no lines; expected at least one text to score")
    check_not_empty(sources, args.source)
    check_known(sources, args.source, model.source_tokenizer, args.max_source_length)
    outputs, _ = translate_all(model, sources, beam_size=args.beam_size,
                               max_length=args.max_length, **options)
    exact = float(np.mean([o == t for o, t in zip(outputs, targets)]))
    dec_in, dec_out = decoder_io(model.target_tokenizer.encode_batch(targets))
    x = {"source_ids": pad_sequences(model.source_tokenizer.encode_batch(sources)),
         "decoder_input_ids": dec_in}
    model.compile()
    forced = model.evaluate(x, dec_out, verbose=0, return_dict=True, batch_size=TRANSLATE_BATCH)
    report = {
        "sentences": len(sources),
        "exact_match": exact,
        "token_accuracy (teacher forced)": forced["token_accuracy"],
        "perplexity (teacher forced)": forced["perplexity"],
        "character_error_rate": character_error_rate(outputs, targets),
        "word_error_rate": word_error_rate(outputs, targets),
    }
    if not isinstance(model.target_tokenizer, CharTokenizer):
        import sacrebleu  # word-level and subword targets

        report["bleu"] = float(sacrebleu.corpus_bleu(outputs, [targets]).score)
    for name, value in report.items():
        print(f"{name}: {value:.4f}" if isinstance(value, float) else f"{name}: {value}")
    return 0


def add_parser(commands):
    e = commands.add_parser("eval", help="score a saved seq2seq model on parallel files")
    e.add_argument("--model", required=True, help="a .keras file or a folder with model.keras")
    e.add_argument("--source", required=True, help="source texts, one per line")
    e.add_argument("--target", required=True, help="reference texts, aligned with --source")
    e.add_argument("--beam-size", type=positive_int, default=1)
    e.add_argument("--max-length", type=positive_int)
    add_decoding_arguments(e)
    return e
