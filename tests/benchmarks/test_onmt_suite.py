"""Suite onmt: OpenNMT-py's training reports are read right; without its side environment
the suite times the zoo and says why."""

import json

import pytest

from benchmarks import __main__ as runner
from benchmarks import onmt

# Lines of a real `onmt_train` log (OpenNMT-py 3.5.1, CPU).
LOG = """\
[2026-12-06 21:53:04,591 INFO] Starting training on CPU, could be very slow
[2026-12-06 21:53:09,505 INFO] Step 50/  200; acc: 15.5; ppl:  38.1; xent: 3.6; lr: 0.00100; \
sents:    3200; bsz:  406/ 416/64; 1385/1420 tok/s;     15 sec;
[2026-12-06 21:53:12,307 INFO] Step 100/  200; acc: 20.4; ppl:  26.7; xent: 3.3; lr: 0.00100; \
sents:    3200; bsz:  426/ 431/64; 7608/7699 tok/s;     17 sec;
[2026-12-06 21:53:15,108 INFO] Step 150/  200; acc: 29.7; ppl:  17.1; xent: 2.8; lr: 0.00100; \
sents:    3200; bsz:  419/ 411/64; 7473/7336 tok/s;     20 sec;
[2026-12-06 21:53:17,909 INFO] Saving checkpoint /tmp/x/model_step_200.pt
"""


def test_onmt_training_rates_are_the_target_rates_after_the_first_report():
    assert onmt.parse_onmt_training(LOG) == [7699.0, 7336.0]
    with pytest.raises(RuntimeError, match="two or more training reports"):
        onmt.parse_onmt_training(LOG.splitlines()[1])


def test_without_opennmt_the_zoo_is_timed_and_the_reason_recorded(tmp_path):
    argv = ["onmt", "--tiny", "--set", "systems=opennmt,seqzoo_fused", "--set", "beams=2",
            "--set", f"onmt_python={tmp_path / 'no-venv' / 'python'}", "--out", str(tmp_path),
            "--set", "jit_compile=true"]
    assert runner.main(argv) == 0
    (record,) = json.loads((tmp_path / "results.json").read_text())["records"]
    assert "OpenNMT-py not found" in record["opennmt_skipped"]
    assert list(record["results"]) == ["seqzoo_fused"]
    result = record["results"]["seqzoo_fused"]
    assert result["train_tokens_per_s"]["median"] > 0 and result["train_peak_mib"] > 0
    assert result["decode"]["2"]["words_per_s"]["median"] > 0
    assert result["decode"]["2"]["xla"] is True  # the decoding process compiled with XLA
    assert "ratio" not in record
    md = (tmp_path / "results.md").read_text()
    assert "OpenNMT-py not timed" in md and "| seqzoo_fused |" in md
    assert "its search compiled by XLA" in md


@pytest.mark.parametrize("key, value", [("systems", "marian"), ("beams", "0"), ("epochs", "1"),
                                        ("hidden", "15")])
def test_bad_settings_are_named(tmp_path, key, value):
    with pytest.raises(SystemExit, match=key):
        runner.main(["onmt", "--tiny", "--set", f"{key}={value}", "--out", str(tmp_path)])


def test_the_side_environment_script_installs_opennmt_without_its_dependencies(tmp_path):
    import os
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "benchmarks").mkdir()
    shutil.copy(root / "benchmarks" / "onmt_env.sh", tmp_path / "benchmarks")
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    # A python3 whose `-m venv DIR` makes a venv of recording pip and python.
    (bin_dir / "python3").write_text(f"""#!/usr/bin/env bash
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  for tool in pip python; do
    printf '#!/usr/bin/env bash\\necho "%s $*" >> {log}\\n' "$tool" > "$3/bin/$tool"
    chmod +x "$3/bin/$tool"
  done
fi
""")
    (bin_dir / "python3").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin")
    done = subprocess.run(["bash", "benchmarks/onmt_env.sh"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".onmt-venv" / "bin" / "python").exists()
    calls = log.read_text().splitlines()
    assert "pip install -q --no-deps OpenNMT-py==3.5.1" in calls
    assert any(c.startswith("pip install -q torch==2.13.0") for c in calls)
    # Its other dependencies by name, never OpenNMT-py with its own (torch < 2.3).
    installs = [c for c in calls if c.startswith("pip install") and "OpenNMT-py" in c]
    assert installs == ["pip install -q --no-deps OpenNMT-py==3.5.1"]
    assert any("pyonmttok" in c for c in calls)
