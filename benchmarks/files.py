"""The result files of a benchmark run: results.json and results.md.

`write_results` merges a run's records into an earlier results.json of the
same folder; `markdown` renders every suite's section with its module's
`TITLE`, `describe` and `table`.
"""

import json
import math
import pathlib

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
SCHEMA = 1


def read_records(out_dir):
    """Records of an earlier results.json in `out_dir`, or `[]`."""
    path = pathlib.Path(out_dir) / RESULTS_JSON
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return data.get("records", []) if isinstance(data, dict) else []


def format_rate(value):
    """A throughput for a table: 3 significant figures, thousands separated."""
    if value is None:
        return "-"
    digits = max(0, 2 - int(math.floor(math.log10(abs(value))))) if value else 0
    rounded = round(value, digits)
    return f"{rounded:,.{digits}f}" if digits else f"{rounded:,.0f}"


def _cpu_details(machine):
    """` (family 25, model 1; AVX2)`: what tells two CPUs of one name apart (absent
    in the records of older runs)."""
    details = [d for d in (machine.get("cpu_family_model"), machine.get("vector")) if d]
    return f" ({'; '.join(details)})" if details else ""


def describe_context(context):
    """One Markdown paragraph naming the machine, device, backend, versions and date."""
    machine = context["machine"]
    device = context["device"]
    versions = ", ".join(f"{name} {v}" for name, v in context["versions"].items())
    where = (
        f"CPU ({machine['available_cpus']} of {machine['logical_cpus']} cores available)"
        if device["type"] == "cpu"
        else f"{device['type'].upper()}: {device['name']} x{device['count']}"
    )
    lines = [
        f"- machine: {machine['cpu']}{_cpu_details(machine)}, {machine['logical_cpus']} "
        "logical CPUs, "
        f"{machine['memory_gib']} GiB, {machine['os']}"
        + (", virtual machine" if machine.get("virtualized") else ""),
        f"- device: {where}; Keras backend: {context['backend']}",
        f"- versions: Python {machine['python']}, {versions}",
        f"- date: {context['date']}; run size: {context.get('size', 'full')}",
    ]
    if context.get("env"):
        lines.append("- environment: " + ", ".join(f"{k}={v}" for k, v in context["env"].items()))
    if context.get("note"):
        lines.append(f"- note: {context['note']}")
    return "\n".join(lines)


def _group(record):
    """Records of one group replace each other: a suite's records of one kind."""
    return record.get("suite"), record.get("kind")


def write_results(out_dir, records, suites, command=None):
    """Writes results.json and results.md into `out_dir`.

    Records of an earlier results.json in the same folder are kept unless
    this run made records of the same suite and kind (`kind`: e.g. the rnn
    suite's "config" and "sweep"), so suites, and the rnn suite's
    configurations and sweep, can be run one at a time. Both files are
    replaced atomically.

    Args:
        out_dir: folder to write into (created if missing).
        records: this run's records; each has `suite` and `context`.
        suites: dict of suite name -> suite module, for every suite that
            may appear in the records (its `TITLE`, `describe` and `table`).
        command: the command line, recorded with this run's records.

    Returns:
        The paths written, `(json_path, md_path)`.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ran = {_group(record) for record in records}
    if command:
        for record in records:
            record["context"]["command"] = command
    kept = [r for r in read_records(out) if _group(r) not in ran and r.get("suite") in suites]
    merged = kept + list(records)
    # Imported here: `seqzoo` imports Keras, which must wait until the backend is chosen.
    from seqzoo.io import atomic_write

    json_path = out / RESULTS_JSON
    with atomic_write(json_path) as f:
        f.write(json.dumps({"schema": SCHEMA, "records": merged}, indent=2) + "\n")
    md_path = out / RESULTS_MD
    with atomic_write(md_path) as f:
        f.write(markdown(merged, suites))
    return json_path, md_path


def markdown(records, suites):
    """The Markdown report of `records`: one section per suite, in the order of `suites`."""
    parts = ["# seqzoo benchmark results\n"]
    present = {record["suite"] for record in records}
    order = [name for name in suites if name in present]
    for name in order:
        suite = suites[name]
        rows = [r for r in records if r["suite"] == name]
        parts.append(f"## {name}: {suite.TITLE}\n")
        contexts = list(
            {json.dumps(r["context"], sort_keys=True): r["context"] for r in rows}.values()
        )
        for context in contexts:
            parts.append(describe_context(context) + "\n")
        parts.append(suite.describe(rows) + "\n")
        parts.append(suite.table(rows) + "\n")
    return "\n".join(parts)
