"""`seqzoo predict` and `seqzoo eval` on a small saved copy model."""

import io
import sys

import keras
import numpy as np
import pytest

import seqzoo
from seqzoo.cli import main
from seqzoo.data import pad_sequences
from seqzoo.errors import InputError
from seqzoo.models import Seq2Seq, Seq2SeqEnsemble
from seqzoo.text import CharTokenizer
from seqzoo.text.specials import EOS_ID, UNK_ID
from tests.models.test_seq2seq import _batch, _model, _words

WORDS = ["abc", "hgfe", "bad"]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    model = _model("luong", units=32, embedding_dim=16)
    model.compile(optimizer=keras.optimizers.Adam(0.01, global_clipnorm=5.0))
    words = _words(1984, seed=0, high=5)  # 31 full batches of 64: one compiled train step
    x, y = _batch(words, words)
    model.fit(x, y, epochs=5, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("model") / "copy.keras"
    model.save(path)
    return path


def test_predict_writes_one_line_per_input(model_path, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(WORDS) + "\n")
    out = tmp_path / "out.txt"
    assert main(["predict", "--model", str(model_path), "--input", str(source),
                 "--output", str(out)]) == 0
    assert out.read_text().splitlines() == WORDS
    # No silent overwrite of an existing output.
    assert main(["predict", "--model", str(model_path), "--input", str(source),
                 "--output", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["predict", "--model", str(model_path), "--input", str(source),
                 "--output", str(out), "--overwrite", "--beam-size", "3", "--n-best", "2"]) == 0
    lines = [line.split("\t") for line in out.read_text().splitlines()]
    assert len(lines) == 2 * len(WORDS)
    assert [(i, h) for i, h, _ in lines[::2]] == [(str(n), w) for n, w in enumerate(WORDS)]
    assert all(float(a[2]) >= float(b[2]) for a, b in zip(lines[::2], lines[1::2]))


def test_jit_compile_decodes_through_xla_and_writes_the_same(model_path, tmp_path, monkeypatch):
    from seqzoo.cli import common

    source = tmp_path / "in.txt"
    source.write_text("\n".join(WORDS) + "\n")
    settings = []
    translate_all = common.translate_all

    def recording(model, *args, **kwargs):
        settings.append(model.search_jit_compile)
        return translate_all(model, *args, **kwargs)

    monkeypatch.setattr("seqzoo.cli.predict.translate_all", recording)
    outputs = {}
    for flags in ([], ["--jit-compile"]):
        out = tmp_path / f"out{len(flags)}.txt"
        assert main(["predict", "--model", str(model_path), "--input", str(source),
                     "--output", str(out), "--beam-size", "3", "--scores", *flags]) == 0
        outputs[len(flags)] = [line.split("\t") for line in out.read_text().splitlines()]
    assert settings == [False, True]
    assert [h for h, _ in outputs[1]] == [h for h, _ in outputs[0]] == WORDS
    np.testing.assert_allclose([float(s) for _, s in outputs[1]],
                               [float(s) for _, s in outputs[0]], atol=2e-4)


def test_predict_with_several_models_decodes_as_an_ensemble(model_path, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(WORDS) + "\n")
    other = _model("bahdanau", units=8, embedding_dim=4)  # untrained: changes the scores
    other(_batch(WORDS, WORDS)[0])
    other_path = tmp_path / "other.keras"
    other.save(other_path)
    assert main(["predict", "--model", str(model_path), "--model", str(other_path),
                 "--input", str(source), "--beam-size", "3", "--scores"]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    loaded = seqzoo.load(model_path)
    ensemble = Seq2SeqEnsemble([loaded, seqzoo.load(other_path)])
    expected = ensemble.translate(WORDS, beam_size=3, return_scores=True)
    assert [text for text, _ in lines] == expected["texts"]
    assert [float(score) for _, score in lines] == pytest.approx(
        [float(row[0]) for row in expected["scores"]], abs=1e-3)
    alone = loaded.translate(WORDS, beam_size=3, return_scores=True)
    assert [float(s) for _, s in lines] != pytest.approx(
        [float(row[0]) for row in alone["scores"]], abs=1e-3)
    # Models over other vocabularies cannot be combined: one line, status 2.
    tokenizer = CharTokenizer.build(["abcdefghij"])
    bigger = Seq2Seq(tokenizer.vocab_size, tokenizer.vocab_size, embedding_dim=4, units=4,
                     source_tokenizer=tokenizer, target_tokenizer=tokenizer)
    bigger(_batch(WORDS, WORDS)[0])
    bigger.save(tmp_path / "bigger.keras")
    assert main(["predict", "--model", str(model_path), "--model",
                 str(tmp_path / "bigger.keras"), "--input", str(source)]) == 2
    err = capsys.readouterr().err
    assert "bigger.keras: cannot decode as an ensemble" in err and "vocabularies" in err


def test_predict_errors_name_the_line_and_the_problem(model_path, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("abc\n\nbad\n")
    assert main(["predict", "--model", str(model_path), "--input", str(source)]) == 2
    assert "in.txt:2: empty line" in capsys.readouterr().err
    source.write_text("abc\nxyz\n")
    assert main(["predict", "--model", str(model_path), "--input", str(source)]) == 2
    assert "outside the source vocabulary" in capsys.readouterr().err
    assert main(["predict", "--model", str(model_path), "--input", str(source),
                 "--n-best", "3"]) == 2
    assert "--n-best" in capsys.readouterr().err


def test_eval_reports_exact_match_and_error_rates(model_path, tmp_path, capsys):
    source, target = tmp_path / "s.txt", tmp_path / "t.txt"
    source.write_text("\n".join(WORDS) + "\n")
    target.write_text("abc\nhgfe\nbed\n")  # the last reference differs by one letter
    assert main(["eval", "--model", str(model_path), "--source", str(source),
                 "--target", str(target)]) == 0
    report = dict(line.split(": ") for line in capsys.readouterr().out.splitlines())
    assert float(report["exact_match"]) == pytest.approx(2 / 3, abs=1e-4)
    assert float(report["character_error_rate"]) == pytest.approx(1 / 10, abs=1e-4)
    assert float(report["word_error_rate"]) == pytest.approx(1 / 3, abs=1e-4)
    # Spaces around a line do not count, as in the dev set of seqzoo train.
    source.write_text("".join(f" {word}\t\n" for word in WORDS))
    target.write_text("abc \n hgfe\nbed\n")
    assert main(["eval", "--model", str(model_path), "--source", str(source),
                 "--target", str(target)]) == 0
    spaced = dict(line.split(": ") for line in capsys.readouterr().out.splitlines())
    assert spaced["exact_match"] == report["exact_match"]
    target.write_text("abc\n")
    assert main(["eval", "--model", str(model_path), "--source", str(source),
                 "--target", str(target)]) == 2
    assert "has 3 lines but" in capsys.readouterr().err


def test_decoding_flags_give_what_the_python_api_gives(model_path, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(WORDS) + "\n")
    model = seqzoo.load(model_path)
    cases = [
        (["--min-length", "5"], {"min_length": 5}),
        (["--no-repeat-ngram-size", "1", "--min-length", "4"],
         {"no_repeat_ngram_size": 1, "min_length": 4}),
        (["--beam-size", "3", "--length-normalization", "average", "--coverage-penalty", "0.2",
          "--length-penalty", "0.6"],
         {"beam_size": 3, "length_normalization": "average", "coverage_penalty": 0.2,
          "length_penalty": 0.6}),
    ]
    for flags, options in cases:
        assert main(["predict", "--model", str(model_path), "--input", str(source),
                     *flags]) == 0
        printed = capsys.readouterr().out.splitlines()
        assert printed == model.translate(WORDS, **options), flags
    # The constraints hold, on the generated ids: at least 4 tokens before </s>, none twice.
    ids = pad_sequences(model.source_tokenizer.encode_batch(WORDS))
    for method in ("greedy", "beam"):
        out = model.search(ids, method=method, beam_size=3, no_repeat_ngram_size=1,
                           min_length=4)["ids"][:, 0]
        for row in out.tolist():
            tokens = row[:row.index(EOS_ID)] if EOS_ID in row else row
            assert len(tokens) >= 4 and len(set(tokens)) == len(tokens), (method, row)
    target = tmp_path / "ref.txt"
    target.write_text("\n".join(WORDS) + "\n")
    assert main(["eval", "--model", str(model_path), "--source", str(source), "--target",
                 str(target), "--min-length", "5"]) == 0
    report = dict(line.split(": ") for line in capsys.readouterr().out.splitlines())
    outputs = model.translate(WORDS, min_length=5)
    assert float(report["exact_match"]) == pytest.approx(
        np.mean([o == w for o, w in zip(outputs, WORDS)]))


@pytest.mark.parametrize("flags, message", [
    (["--length-penalty", "0.6"], "--length-penalty: beam-search options; pass --beam-size"),
    (["--beam-size", "2", "--length-normalization", "wu"], "invalid choice: 'wu'"),
    (["--min-length", "-1"], "--min-length: expected an integer >= 0, got '-1'"),
    (["--beam-size", "2", "--coverage-penalty", "nan"], "expected a finite number >= 0"),
])
def test_bad_decoding_flags_are_one_line(model_path, tmp_path, capsys, flags, message):
    source = tmp_path / "in.txt"
    source.write_text("abc\n")
    try:
        code = main(["predict", "--model", str(model_path), "--input", str(source), *flags])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_report_align_appends_the_most_attended_source_token_of_each_output_token(
        model_path, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(WORDS) + "\n")
    assert main(["predict", "--model", str(model_path), "--input", str(source),
                 "--report-align", "--scores"]) == 0
    lines = capsys.readouterr().out.splitlines()
    model = seqzoo.load(model_path)
    expected = model.translate(WORDS, return_alignments=True)
    for line, word, text, alignment, length in zip(lines, WORDS, expected["texts"],
                                                   expected["alignments"], expected["lengths"]):
        output, rest = line.split(" ||| ")
        pairs, score = rest.split("\t")
        (length,) = length  # one per hypothesis
        assert output == text and length == len(text)
        pairs = [tuple(map(int, p.split("-"))) for p in pairs.split()]
        assert [t for _, t in pairs] == list(range(length))
        assert [s for s, _ in pairs] == [int(np.argmax(alignment[0][t])) for t in range(length)]
        assert all(0 <= s < len(word) for s, _ in pairs)
        float(score)


def test_replace_unk_puts_the_most_attended_source_token_in_place_of_unk(model_path,
                                                                         monkeypatch):
    model = seqzoo.load(model_path)
    tok = model.target_tokenizer
    a, b = tok.token_to_id("a"), tok.token_to_id("b")
    source = "cab"  # the source tokens c, a, b at positions 0, 1, 2
    alignments = np.zeros((1, 1, 6, 8), "float32")
    for step, position in enumerate([2, 0, 1, 1]):
        alignments[0, 0, step, position] = 1.0
    ids = np.array([[[a, UNK_ID, UNK_ID, b, EOS_ID, 0]]])

    methods = []

    def search(source_ids, **kwargs):
        methods.append(kwargs["method"])
        return {"ids": ids, "scores": np.zeros((1, 1)), "alignments": alignments}

    monkeypatch.setattr(model, "search", search)
    assert model.translate([source], replace_unk=True) == ["acab"]  # <unk>s: c, then a
    assert model.translate([source]) == ["a" + tok.decode([UNK_ID]) * 2 + "b"]
    assert model.translate([source], replace_unk=True, return_alignments=True)["lengths"] == [
        [4]]
    assert methods == ["beam", "greedy", "beam"]  # the alignments come from beam search
    # Tokenizers of two kinds: a copied source token would be wrong text.
    from seqzoo.text import WordTokenizer

    monkeypatch.setattr(model, "target_tokenizer", WordTokenizer.build(["a b c"]))
    with pytest.raises(InputError, match="one kind. Received: CharTokenizer .source., "
                                         "WordTokenizer .target."):
        model.translate([source], replace_unk=True)


def test_prefixes_start_the_outputs(model_path, tmp_path, capsys):
    model = seqzoo.load(model_path)
    outputs = model.translate(WORDS, prefixes=["h", "", "ba"])
    assert outputs[0].startswith("h") and outputs[2].startswith("ba")
    assert outputs[1] == model.translate([WORDS[1]])[0]
    source, prefixes = tmp_path / "in.txt", tmp_path / "prefix.txt"
    source.write_text("\n".join(WORDS) + "\n")
    prefixes.write_text("h\n\nba\n")
    assert main(["predict", "--model", str(model_path), "--input", str(source), "--prefix",
                 str(prefixes)]) == 0
    assert capsys.readouterr().out.splitlines() == outputs
    prefixes.write_text("h\n")
    assert main(["predict", "--model", str(model_path), "--input", str(source), "--prefix",
                 str(prefixes)]) == 2
    assert "has 1 lines but the input has 3" in capsys.readouterr().err
    with pytest.raises(InputError, match=r"prefixes\[0\]='z!'"):
        model.translate(["abc"], prefixes=["z!"])


@pytest.mark.parametrize("command, flag, value", [
    ("predict", "--max-length", "0"), ("predict", "--beam-size", "-5"),
    ("eval", "--beam-size", "0"), ("eval", "--max-length", "0"), ("predict", "--n-best", "x")])
def test_sizes_are_checked_where_they_are_parsed(model_path, tmp_path, capsys, command, flag,
                                                 value):
    files = (["--input", str(tmp_path / "in.txt")] if command == "predict"
             else ["--source", str(tmp_path / "s"), "--target", str(tmp_path / "t")])
    with pytest.raises(SystemExit) as exit_:
        main([command, "--model", str(model_path), *files, flag, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"{flag}: expected a positive integer, got '{value}'" in err
    assert "Traceback" not in err


def test_unknown_characters_and_bad_bytes_are_named_by_file_and_line(model_path, tmp_path,
                                                                     capsys, monkeypatch):
    source = tmp_path / "in.txt"
    source.write_text("abc\n" * 69 + "h\u00e9llo\n", encoding="utf-8")
    assert main(["predict", "--model", str(model_path), "--input", str(source)]) == 2
    err = capsys.readouterr().err
    assert f"{source}:70: 'h\u00e9llo' has tokens outside the source vocabulary" in err
    target = tmp_path / "t.txt"
    target.write_text("abc\n" * 70)
    assert main(["eval", "--model", str(model_path), "--source", str(source), "--target",
                 str(target)]) == 2
    assert f"{source}:70:" in capsys.readouterr().err
    # Standard input: the same bytes, named <stdin>.
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"abc\nh\xc3llo\n")))
    assert main(["predict", "--model", str(model_path)]) == 2
    assert "<stdin>:2: line is not valid UTF-8" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("abc\n\nbad\n".encode())))
    assert main(["predict", "--model", str(model_path)]) == 2
    assert "<stdin>:2: empty line" in capsys.readouterr().err
