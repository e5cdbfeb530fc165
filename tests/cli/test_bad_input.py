"""Every command against every class of bad input: exit status 2, exactly one line
on stderr (`seqzoo COMMAND: error: ...`) that names what is wrong and where, no
traceback, and every file that existed before byte-identical afterwards (no
half-written output, no run folder made before the arguments were known good).
"""

import io
import pathlib
import sys

import pytest

from seqzoo.cli import main
from tests.fixtures_train import SETTINGS, sort_data
from tests.models.test_seq2seq import _model

# Placeholders in the table's arguments, filled in per test:
#   {model}      a small saved Seq2Seq over the letters a-z
#   {bad_model}  random bytes named .keras; {cut_model} the model cut in half
#   {crc_model}  the model with one byte of its config.json changed
#   {code_model} an archive with code (a Lambda layer)
#   {missing}    a path that does not exist; {dir} a directory
#   {src}/{tgt}  good data; {short} a file of 2 lines; {empty} an empty file
#   {latin1}     a file whose line 2 is not UTF-8
#   {unknown}    a file whose line 3 holds a character outside the vocabulary
#   {long}       one line of 100,000 letters
#   {exists}     an existing output; {run} a run folder that exists
#   {tmp}        the test's folder
CASES = [
    # --- seqzoo predict
    ("predict", "--model {missing} --input {src}", None, "{missing}"),
    ("predict", "--model {bad_model} --input {src}", None, "not a Keras archive"),
    ("predict", "--model {cut_model} --input {src}", None, "truncated"),
    ("predict", "--model {dir} --input {src}", None, "{dir}"),
    # An archive that carries code (a lambda's bytecode): safe mode refuses it.
    ("predict", "--model {code_model} --input {src}", None, "deserialization of a `Lambda`"),
    ("finetune", "--from {code_model} --train {src} {tgt} --out {tmp}/new", None,
     "deserialization of a `Lambda`"),
    ("predict", "--model {model} --input {missing}", None, "{missing}"),
    ("predict", "--model {model} --input {dir}", None, "{dir}"),
    ("predict", "--model {model} --input {latin1}", None, "{latin1}:2"),
    ("predict", "--model {model}", b"abc\n\xe9t\xe9\n", "<stdin>:2"),
    ("predict", "--model {model} --input {unknown}", None, "{unknown}:3"),
    ("predict", "--model {model}", "ab\nAB\n".encode(), "<stdin>:2"),
    ("predict", "--model {model} --input {long}", None, "{long}:1: 100000 source tokens"),
    ("predict", "--model {model} --input {src} --max-source-length 0", None,
     "--max-source-length"),
    ("predict", "--model {model} --input {src} --output {exists}", None, "--overwrite"),
    ("predict", "--model {model} --input {src} --output {dir} --overwrite", None,
     "--output {dir}: is a folder"),
    ("predict", "--model {model} --input {src} --output {missing}/out.txt", None,
     "no folder {missing}"),
    ("predict", "--model {crc_model} --input {src}", None, "{crc_model}: cannot load the model"),
    ("predict", "--model {model} --input {src} --min-length 5 --max-length 5", None,
     "--min-length 5 bans </s> up to --max-length 5"),
    ("predict", "--model {model} --input {src} --beam-size 0", None, "--beam-size"),
    ("predict", "--model {model} --input {src} --beam-size x", None, "--beam-size"),
    ("predict", "--model {model} --input {src} --max-length 0", None, "--max-length"),
    ("predict", "--model {model} --input {src} --max-length -5", None, "--max-length"),
    ("predict", "--model {model} --input {src} --n-best 0", None, "--n-best"),
    ("predict", "--model {model} --input {src} --beam-size 2 --n-best 3", None, "--n-best"),
    ("predict", "--model {model} --input {src} --length-penalty nan", None, "--length-penalty"),
    ("predict", "--model {model} --input {src} --coverage-penalty inf", None,
     "--coverage-penalty"),
    ("predict", "--model {model} --input {src} --min-length -1", None, "--min-length"),
    ("predict", "--model {model} --input {src} --no-repeat-ngram-size -1", None,
     "--no-repeat-ngram-size"),
    ("predict", "--model {model} --input {src} --prefix {short}", None, "{short}"),
    ("predict", "--model {model} --input {src} --prefix {unknown}", None, "{unknown}:3"),
    ("predict", "--model {model} --input {src} --beam-size", None, "--beam-size"),
    ("predict", "--input {src}", None, "--model"),
    # --- seqzoo eval
    ("eval", "--model {model} --source {src} --target {short}", None, "{short}"),
    ("eval", "--model {model} --source {empty} --target {empty}", None, "{empty}: no lines"),
    ("eval", "--model {model} --source {src} --target {latin1}", None, "{latin1}:2"),
    ("eval", "--model {model} --source {unknown} --target {unknown}", None, "{unknown}:3"),
    ("eval", "--model {model} --source {src} --target {missing}", None, "{missing}"),
    ("eval", "--model {model} --source {long} --target {long}", None, "{long}:1"),
    ("eval", "--model {bad_model} --source {src} --target {tgt}", None, "not a Keras archive"),
    ("eval", "--model {model} --source {src} --target {tgt} --beam-size 0", None, "--beam-size"),
    ("eval", "--model {model} --source {src} --target {tgt} --max-length 0", None,
     "--max-length"),
    # --- seqzoo train (no run folder may appear)
    ("train", "--train {src} {short} --out {tmp}/new", None, "{short}"),
    ("train", "--train {latin1} {latin1} --out {tmp}/new", None, "{latin1}:2"),
    ("train", "--train {empty} {empty} --out {tmp}/new", None, "{empty}"),
    ("train", "--train {missing} {tgt} --out {tmp}/new", None, "{missing}"),
    ("train", "--train {src} --out {tmp}/new", None, "{src}:1: expected 2 tab-separated"),
    ("train", "--train {src} {tgt} --out {run}", None, "--overwrite"),
    ("train", "--train {src} {tgt} --out {tmp}/new --epochs 0", None, "--epochs 0: epochs=0"),
    ("train", "--train {src} {tgt} --out {tmp}/new --batch-size -1", None,
     "--batch-size -1: batch_size=-1"),
    ("train", "--train {src} {tgt} --out {tmp}/new --learning-rate nan", None,
     "--learning-rate nan: learning_rate=nan"),
    ("train", "--train {src} {tgt} --out {tmp}/new --learning-rate -1", None,
     "--learning-rate -1.0: learning_rate=-1"),
    ("train", "--train {src} {tgt} --out {tmp}/new --set learning_rate=Infinity", None,
     "learning_rate"),
    ("train", "--train {src} {tgt} --out {tmp}/new --set sane_loss_factor=1", None,
     "sane_loss_factor=1.0; expected a number > 1"),
    ("train", "--train {src} {tgt} --out {tmp}/new --set model.units=many", None,
     "model.units"),
    ("train", "--train {src} {tgt} --out {tmp}/new --set no_such_key=1", None, "no_such_key"),
    ("train", "--train {src} {tgt} --out {tmp}/new --set units", None, "units"),
    ("train", "--train {src} {tgt} --out {tmp}/new --model no_such_preset", None,
     "no_such_preset"),
    ("train", "--train {src} {tgt} --out {tmp}/new --config {missing}", None, "{missing}"),
    ("train", "--train {src} {tgt} --out {tmp}/new --config {latin1}", None, "{latin1}"),
    ("train", "--resume {missing}", None, "{missing}"),
    ("train", "--resume {dir}", None, "{dir}"),
    # --- seqzoo finetune
    ("finetune", "--from {missing} --train {src} {tgt} --out {tmp}/new", None, "{missing}"),
    ("finetune", "--from {bad_model} --train {src} {tgt} --out {tmp}/new", None,
     "not a Keras archive"),
    ("finetune", "--from {model} --vocab {missing} --train {src} {tgt} --out {tmp}/new", None,
     "{missing}"),
    ("finetune", "--from {model} --vocab {latin1} --train {src} {tgt} --out {tmp}/new", None,
     "{latin1}"),
    ("finetune", "--from {model} --train {src} {tgt} --out {tmp}/new --freeze-steps -1", None,
     "--freeze-steps"),
    ("finetune", "--from {model} --train {src} {tgt} --out {tmp}/new --epochs 0", None,
     "--epochs 0: epochs=0"),
    # --- seqzoo export
    ("export", "--model {missing} --out {tmp}/new", None, "{missing}"),
    ("export", "--model {cut_model} --out {tmp}/new", None, "truncated"),
    ("export", "--model {model} --out {run}", None, "--overwrite"),
    ("export", "--model {model} --out {tmp}/new --beam-size 0", None, "--beam-size"),
    ("export", "--model {model} --out {tmp}/new --min-length 100", None, "--min-length"),
    # --- seqzoo average
    ("average", "--run {dir} --out {tmp}/new.keras", None, "{dir}"),
    ("average", "--run {missing} --out {tmp}/new.keras", None, "{missing}"),
    ("average", "--run {run} --last 0 --out {tmp}/new.keras", None, "--last"),
    ("average", "--run {run} --out {missing}/new.keras", None, "no folder {missing}"),
]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """The bytes of a small untrained Seq2Seq over the letters a-z, and of a
    Keras archive with a `Lambda` layer (code), saved once for the module."""
    import keras

    folder = tmp_path_factory.mktemp("model")
    _model("luong", units=8, embedding_dim=4).save(folder / "model.keras")
    inputs = keras.Input((2,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(folder / "code.keras")
    return (folder / "model.keras").read_bytes(), (folder / "code.keras").read_bytes()


def _files(tmp_path):
    """Path -> bytes (None for a directory) of everything under `tmp_path`."""
    return {p: (None if p.is_dir() else p.read_bytes()) for p in sorted(tmp_path.rglob("*"))}


def _fill(text, paths):
    for key, value in paths.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def _setup(tmp_path, saved):
    model_bytes, code_bytes = saved
    paths = {"tmp": tmp_path}
    paths["code_model"] = tmp_path / "code.keras"
    paths["code_model"].write_bytes(code_bytes)
    paths["model"] = tmp_path / "model.keras"
    paths["model"].write_bytes(model_bytes)
    paths["bad_model"] = tmp_path / "random.keras"
    paths["bad_model"].write_bytes(bytes(range(256)) * 8)
    paths["cut_model"] = tmp_path / "cut.keras"
    paths["cut_model"].write_bytes(model_bytes[: len(model_bytes) // 2])
    # One byte of the archive's config.json changed: a bad copy (its CRC fails).
    at = model_bytes.index(b'"class_name"') + 2
    paths["crc_model"] = tmp_path / "crc.keras"
    paths["crc_model"].write_bytes(model_bytes[:at] + b"X" + model_bytes[at + 1:])
    paths["missing"] = tmp_path / "missing.txt"
    paths["dir"] = tmp_path / "folder"
    paths["dir"].mkdir()
    paths["src"], paths["tgt"] = map(pathlib.Path, sort_data(tmp_path, 6, 0, "good"))
    paths["latin1"] = tmp_path / "latin1.txt"
    paths["latin1"].write_bytes(b"abc\n\xe9t\xe9\nabc\nabc\nabc\nabc\n")
    paths["unknown"] = tmp_path / "unknown.txt"
    paths["unknown"].write_text("abc\nbca\nab#c\nabc\nabc\nabc\n", encoding="utf-8")
    paths["short"] = tmp_path / "short.txt"
    paths["short"].write_text("abc\nabc\n", encoding="utf-8")
    paths["empty"] = tmp_path / "empty.txt"
    paths["empty"].write_bytes(b"")
    paths["long"] = tmp_path / "long.txt"
    paths["long"].write_text("ab" * 50_000 + "\n", encoding="utf-8")
    paths["exists"] = tmp_path / "existing-output.txt"
    paths["exists"].write_text("results of an earlier run\n", encoding="utf-8")
    paths["run"] = tmp_path / "earlier-run"
    paths["run"].mkdir()
    (paths["run"] / "run.json").write_text('{"earlier": true}\n', encoding="utf-8")
    return paths


@pytest.mark.parametrize(
    "command, arguments, stdin, where", CASES,
    ids=[f"{c}:{a.split('{')[-1].split('}')[0] if '{' in a else a}:{i}"
         for i, (c, a, _, _) in enumerate(CASES)],
)
def test_bad_input_is_one_line_and_status_2_and_changes_no_file(
    command, arguments, stdin, where, saved_model, tmp_path, monkeypatch, capsys
):
    paths = _setup(tmp_path, saved_model)
    # A tiny model and one epoch first, so that the case's own arguments win (a
    # --resume takes the run's own settings, and refuses others).
    argv = [command]
    if command == "train" and "--resume" not in arguments:
        argv += SETTINGS + ["--epochs", "1"]
    elif command == "finetune":
        argv += ["--set", "num_buckets=1", "--epochs", "1"]
    argv += _fill(arguments, paths).split()
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    before = _files(tmp_path)
    try:
        status = main(argv)
    except SystemExit as exit:  # argparse's own errors
        status = exit.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, f"{argv}: status {status}\n{err[-3000:]}"
    assert len(lines) == 1, f"{argv}: expected one line on stderr, got:\n{err[-3000:]}"
    assert lines[0].startswith(f"seqzoo {command}: error: "), lines[0]
    assert _fill(where, paths) in lines[0], f"{where!r} not named in: {lines[0]}"
    assert "Traceback" not in err
    # Nothing made, nothing changed, nothing removed.
    assert _files(tmp_path) == before


def test_an_internal_error_keeps_its_traceback(monkeypatch, tmp_path):
    """A bug is not dressed up as bad input: it propagates (exit 1 at the shell)."""
    from seqzoo.cli import predict

    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr(predict, "run", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["predict", "--model", str(tmp_path / "m.keras")])

