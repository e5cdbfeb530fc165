"""The letter-sorting demo: train a seq2seq model to sort the letters of words.

`seqzoo demo sort` trains an attention model on the shipped words of 1-8
letters, prints exact-match accuracy by word length on held-out words (up to
20 letters, to show how far it generalises), sorts a few examples, saves the
model and draws two pictures: accuracy by length and an attention heatmap.
"""

import json
import os
import time

import keras
import numpy as np

import seqzoo
from seqzoo.data import BucketedBatches
from seqzoo.demos.letters import (
    ALPHABET,
    check_words,
    load_split,
    make_data,
    random_words,
    sort_letters,
)
from seqzoo.errors import InputError
from seqzoo.models.base import save_model
from seqzoo.training.config import resolve
from seqzoo.training.trainer import Trainer

# data/ of the repository: beside the package in a clone or an editable
# install; a plain `pip install .` does not copy it, so the current folder
# (the clone the README's command runs in) is tried next.
SHIPPED_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "data")


def shipped_data_dir():
    """The folder holding the shipped letter-sorting files, or None."""
    for directory in (SHIPPED_DATA, os.path.join(os.getcwd(), "data")):
        if os.path.exists(os.path.join(directory, "letters_source.txt")):
            return directory
    return None
EXAMPLES = ("hello", "machine", "common", "sequence", "zoo")
LONG_WORDS_PER_LENGTH = 100


class LetterBatches:
    """Bucketed training batches; with `augment`, each epoch shuffles the letters
    of every source word (its sorted target is the same).

    Each epoch's batches depend on the epoch alone (`set_epoch`), as the
    trainer needs to repeat them.
    """

    def __init__(self, sources, targets, tokenizer, batch_size, seed, augment):
        self.sources, self.targets = list(sources), list(targets)
        self.tokenizer, self.batch_size = tokenizer, batch_size
        self.seed, self.augment = seed, augment
        self.target_ids = tokenizer.encode_batch(self.targets)
        self.epoch = None
        self.set_epoch(0)

    def set_epoch(self, epoch):
        if epoch == self.epoch:
            return
        self.epoch = epoch
        words = self.sources
        if self.augment:
            rng = np.random.default_rng([self.seed, epoch])
            words = ["".join(rng.permutation(list(w))) for w in words]
        self._batches = BucketedBatches(self.tokenizer.encode_batch(words), self.target_ids,
                                        batch_size=self.batch_size, num_buckets=4,
                                        seed=self.seed)
        self._batches.set_epoch(epoch)

    def __len__(self):
        return len(self._batches)

    def __getitem__(self, index):
        return self._batches[index]


def build_model(name, tokenizer, units, embedding_dim, seed, coverage=False):


    keras.utils.set_random_seed(seed)
    extra = {"coverage": True} if coverage else {}
    return seqzoo.create(name, source_vocab_size=tokenizer.vocab_size,
                         target_vocab_size=tokenizer.vocab_size, units=units,
                         embedding_dim=embedding_dim, num_layers=1,
                         source_tokenizer=tokenizer, target_tokenizer=tokenizer, **extra)


def train(model, sources, targets, epochs, batch_size, learning_rate, seed, augment, verbose):
    """Trains `model` with the trainer (cosine decay to 5% of `learning_rate` over the
    steps); returns `(seconds, history)`, one entry per epoch."""
    batches = LetterBatches(sources, targets, model.source_tokenizer, batch_size, seed, augment)
    settings, _ = resolve([("demo sort", {"epochs": epochs, "schedule": "cosine",
                                          "final_lr_ratio": 0.05, "seed": seed})])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=5.0))
    start = time.time()
    history = Trainer.for_model(model, batches, settings, verbose=verbose).fit()
    return time.time() - start, history


def accuracy_by_length(model, words, beam_size=1):
    """`{length: (correct, total)}` of exact-match sorting over `words`."""
    outputs = zip(words, model.translate(list(words), beam_size=beam_size))
    table = {}
    for word, output in outputs:
        correct, total = table.get(len(word), (0, 0))
        table[len(word)] = (correct + (output == sort_letters(word)), total + 1)
    return dict(sorted(table.items()))


def evaluation_words(test_words, train_max_length, eval_max_length, seed, exclude):
    """The held-out test words plus generated words longer than training ones."""
    words = list(test_words)
    rng = np.random.default_rng([seed, 7])
    for length in range(train_max_length + 1, eval_max_length + 1):
        words += random_words(LONG_WORDS_PER_LENGTH, length, length, rng, exclude=exclude)
    return words


def format_table(tables):
    """Accuracy by length, one column per model."""
    names = list(tables)
    lengths = sorted({n for t in tables.values() for n in t})
    lines = ["length  " + "  ".join(f"{n:>18}" for n in names)]
    for length in lengths:
        cells = []
        for name in names:
            correct, total = tables[name].get(length, (0, 0))
            cells.append(f"{100 * correct / total:6.1f}% ({correct:4}/{total:4})" if total
                         else " " * 18)
        lines.append(f"{length:>6}  " + "  ".join(cells))
    return "\n".join(lines)


def overall(table, lengths=None):
    pairs = [v for n, v in table.items() if lengths is None or n in lengths]
    correct, total = sum(c for c, _ in pairs), sum(t for _, t in pairs)
    return correct / max(total, 1), total


def plot_accuracy(tables, train_max_length, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, table in tables.items():
        lengths = list(table)
        ax.plot(lengths, [100 * c / t for c, t in table.values()], marker="o", label=name)
    ax.axvline(train_max_length + 0.5, color="grey", linestyle="--", linewidth=1)
    ax.text(train_max_length + 0.6, 5, "longer than\ntraining words", fontsize=8, color="grey")
    ax.set(xlabel="word length (letters)", ylabel="exact match (%)", ylim=(0, 102),
           title="Letter sorting: held-out accuracy by word length")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_attention(model, word, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = model.translate([word], return_alignments=True)
    output = result["texts"][0]
    weights = result["alignments"][0][0][: len(output) + 1]  # + </s>
    fig, ax = plt.subplots(figsize=(0.5 * len(word) + 2, 0.5 * len(output) + 2))
    ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(word)), list(word))
    ax.set_yticks(range(len(output) + 1), list(output) + ["</s>"])
    ax.set(xlabel="source letters", ylabel="output letters",
           title=f"attention: {word} -> {output}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return output


def model_file(path):
    """The `.keras` file of a `--model-path` (a file, or a folder holding model.keras)."""
    candidate = os.path.join(path, "model.keras") if os.path.isdir(path) else path
    if not os.path.isfile(candidate):
        raise InputError(f"no saved model at {path} (expected a .keras file or a folder "
                         "with model.keras, as written by 'seqzoo demo sort --out DIR')")
    return candidate


def sort_words(model_path, words):
    """Sorts `words` with a saved model; returns `[(word, output)]`."""


    model = seqzoo.load(model_file(model_path))
    tokenizer = model.source_tokenizer
    letters = {tokenizer.id_to_token(i) for i in range(4, tokenizer.vocab_size)}
    check_words(words, letters)
    return list(zip(words, model.translate(list(words))))


def prepare_data(args):
    """`(train, test)` word lists for the requested length range."""
    shipped = ((args.min_length, args.max_length, args.train_size, args.seed) == (1, 8, 10000, 0)
               and args.data_dir is None)
    directory = shipped_data_dir() if shipped else None
    if shipped and directory is None:
        # The generator is deterministic: this writes the shipped files exactly.
        print("shipped data/ not found here; regenerating the same files from seed 0")
    directory = directory or args.data_dir or os.path.join(
        args.out, f"data-{args.min_length}-{args.max_length}")
    if not os.path.exists(os.path.join(directory, "letters_source.txt")):
        print(f"making data for words of {args.min_length}-{args.max_length} letters in "
              f"{directory}")
        make_data(directory, args.min_length, args.max_length,
                  sizes={"train": args.train_size}, seed=args.seed)
    train_words, _ = load_split(directory, "train")
    test_words, _ = load_split(directory, "test")
    return directory, train_words, test_words


def run(args):
    """`seqzoo demo sort`: the whole demo; returns the exit status."""
    from seqzoo.text import CharTokenizer

    if args.model_path:
        if not args.words:
            raise InputError("give words to sort after --model-path, e.g. "
                             "seqzoo demo sort --model-path runs/sort hello world")
        for word, output in sort_words(args.model_path, args.words):
            print(f"{word} -> {output}")
        return 0
    if args.words:
        raise InputError(f"words to sort need --model-path. Received: {' '.join(args.words)}")
    if args.make_data:
        directory = args.data_dir or shipped_data_dir() or "data"
        counts = make_data(directory, args.min_length, args.max_length,
                           sizes={"train": args.train_size}, seed=args.seed)
        print(f"wrote {counts} to {directory}")
        return 0
    if not 1 <= args.min_length <= args.max_length:
        raise InputError("expected 1 <= --min-length <= --max-length. Received: "
                         f"{args.min_length}, {args.max_length}")
    start = time.time()
    os.makedirs(args.out, exist_ok=True)
    directory, train_words, test_words = prepare_data(args)
    eval_max = max(args.eval_max_length, args.max_length)
    words = evaluation_words(test_words, args.max_length, eval_max, args.seed,
                             exclude=set(train_words))
    tokenizer = CharTokenizer.build([ALPHABET])
    names = ["seq2seq_basic", args.model] if args.compare else [args.model]
    if args.compare and args.model == "seq2seq_basic":
        names = ["seq2seq_basic", "seq2seq_luong"]
    print(f"training on {len(train_words)} words of {args.min_length}-{args.max_length} "
          f"letters from {directory}")
    tables, record, models = {}, {"models": {}}, {}
    verbose = args.verbose
    for name in names:
        print(f"\n== {name}: {args.epochs} epochs ==")
        coverage = args.coverage and name != "seq2seq_basic"
        if coverage and name == "seq2seq_luong":
            raise InputError("--coverage needs a stepwise decoder: use --model "
                             "seq2seq_luong_feed or seq2seq_bahdanau")
        model = build_model(name, tokenizer, args.units, args.embedding_dim, args.seed, coverage)
        seconds, history = train(model, train_words, [sort_letters(w) for w in train_words],
                                 args.epochs, args.batch_size, args.learning_rate, args.seed,
                                 not args.no_augment, verbose)
        tables[name] = accuracy_by_length(model, words, beam_size=args.beam_size)
        models[name] = model
        in_range = set(range(args.min_length, args.max_length + 1))
        accuracy, total = overall(tables[name], in_range)
        record["models"][name] = {
            "train_seconds": round(seconds, 1), "final_loss": history[-1]["train_loss"],
            "heldout_exact_match": accuracy, "heldout_words": total,
            "by_length": {n: c / t for n, (c, t) in tables[name].items()},
        }
        print(f"{name}: trained in {seconds:.0f} s; held-out exact match on "
              f"{args.min_length}-{args.max_length} letters: {100 * accuracy:.2f}% "
              f"of {total} words")
    print("\nExact match by word length (held-out words; longer than "
          f"{args.max_length} letters were never seen in training):")
    print(format_table(tables))
    model = models[names[-1]]
    print("\nExamples:")
    for word, output in zip(EXAMPLES, model.translate(list(EXAMPLES), beam_size=args.beam_size)):
        mark = "ok" if output == sort_letters(word) else f"expected {sort_letters(word)}"
        print(f"  {word} -> {output}  ({mark})")
    model_path = os.path.join(args.out, "model.keras")
    save_model(model, model_path)
    plot_accuracy(tables, args.max_length, os.path.join(args.out, "accuracy_by_length.png"))
    pictures = [os.path.join(args.out, "accuracy_by_length.png")]
    if model.hyperparameters["attention"] is not None:
        plot_attention(model, "machine", os.path.join(args.out, "attention.png"))
        pictures.append(os.path.join(args.out, "attention.png"))
    record.update(settings={k: v for k, v in vars(args).items() if k != "func"},
                  total_seconds=round(time.time() - start, 1),
                  backend=keras.backend.backend())
    from seqzoo.io import atomic_write

    with atomic_write(os.path.join(args.out, "results.json")) as f:
        json.dump(record, f, indent=2)
    print(f"\nsaved the model to {model_path}; pictures: {', '.join(pictures)}")
    print(f"sort words with it: seqzoo demo sort --model-path {args.out} hello world")
    print(f"whole demo: {time.time() - start:.0f} s")
    return 0
