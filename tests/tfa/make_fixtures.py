"""Reference fixtures for seqzoo.tfa.seq2seq, produced by the real tensorflow-addons.

In a virtual environment with tensorflow==2.15.1 and tensorflow-addons==0.23.0:

    python tests/tfa/make_fixtures.py [mechanisms attention_wrapper basic_decoder ...]

It rewrites tests/tfa/fixtures/*.json (the named files only, when names are given).
Neither package is a dependency of seqzoo: the tests only read the JSON files this
script writes. The output is deterministic (one CPU thread, seeded values).

Each file is {"meta": {...}, "cases": [case, ...]}; each case is

    {"case": unique name, "kind": what is built, "config": constructor arguments and
     call conventions, "inputs": {name: nested lists}, "input_dtypes": {name: dtype},
     "weights": {path: nested lists}, "weights_order": [path, ...],
     "outputs": {name: nested lists}, "dtypes": {output name: dtype}}

Weight paths follow the TFA attribute chain from a few roots: "mechanism/..." (or
"mechanisms/<i>/..."), "cell/..." ("cell/cells/<i>/..." for StackedRNNCells),
"wrapper/attention_layers/<i>/kernel", "output_layer/...", and "embedding" (an input
matrix, never part of weights_order). weights_order lists the paths in the order of
the TFA object's `.weights`. Every variable is overwritten with numpy values drawn from
a seeded RandomState (uniform(-0.5, 0.5)); the scalar weights get explicit values
(attention_g 0.7, scale_weight 1.3, attention_score_bias -0.4). Float values are
float32 numbers written as JSON floats, not rounded; -Infinity may occur where TFA
itself yields it (beam scores of the empty beams at the first step).

TFA computes an attention mechanism's keys (memory_layer(memory)) once, when its memory
is set up; after overwriting the weights this script calls mechanism.setup_memory(memory,
memory_sequence_length) again, so the recorded keys use the recorded memory_layer kernel.
"""

import json
import os
import sys
import zlib
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_addons as tfa  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.get_logger().setLevel("ERROR")

s2s = tfa.seq2seq
F32 = np.float32
I32 = np.int32
OUT = Path(__file__).resolve().parent / "fixtures"

SCALARS = {"attention_g": 0.7, "scale_weight": 1.3, "attention_score_bias": -0.4}

# Sizes shared by most cases.
B, S, D = 3, 5, 6  # batch, memory time, memory depth
T, I_DIM = 4, 3  # decoder steps, decoder input depth
V, E = 7, 3  # vocabulary, embedding depth
UNITS = 5  # RNN cell units
BEAM = 3


# --------------------------------------------------------------------------- helpers


def seed_of(key):
    return zlib.crc32(key.encode()) % (2**31)


def np_of(x):
    if isinstance(x, tf.TensorArray):
        x = x.stack()
    if isinstance(x, (tf.Tensor, tf.Variable)):
        return x.numpy()
    return np.asarray(x)


def to_json(x):
    """Tensors, arrays and (nested) lists/tuples/dicts of them as nested lists."""
    if isinstance(x, dict):
        return {k: to_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)) and not isinstance(x, np.ndarray):
        return [to_json(v) for v in x]
    a = np_of(x)
    if a.dtype == np.float64:
        raise TypeError("float64 value in a fixture")
    return a.tolist()


def dtype_tree(v):
    """One dtype name per value (a dict of them for a dict value)."""
    if isinstance(v, dict):
        return {k: dtype_tree(x) for k, x in v.items()}
    names = {np_of(t).dtype.name for t in tf.nest.flatten(v)}
    assert len(names) == 1, names
    return names.pop()


def dtypes_of(d):
    return {k: dtype_tree(v) for k, v in d.items()}


def flat_state(state):
    return [np_of(t) for t in tf.nest.flatten(state)]


class Registry:
    """Maps each TFA variable (by identity) to its attribute path."""

    def __init__(self):
        self.paths = {}
        self.mechanisms = []

    def add(self, path, var):
        if var is not None:
            self.paths[id(var)] = path

    def dense(self, prefix, layer):
        self.add(f"{prefix}/kernel", layer.kernel)
        if layer.use_bias:
            self.add(f"{prefix}/bias", layer.bias)

    def mechanism(self, prefix, m):
        self.mechanisms.append(m)
        self.add(f"{prefix}/memory_layer/kernel", m.memory_layer.kernel)
        if m.query_layer is not None:
            self.add(f"{prefix}/query_layer/kernel", m.query_layer.kernel)
        for name in ("attention_v", "attention_g", "attention_b", "scale_weight",
                     "attention_score_bias"):
            self.add(f"{prefix}/{name}", getattr(m, name, None))

    def cell(self, prefix, cell):
        if isinstance(cell, tf.keras.layers.StackedRNNCells):
            for i, c in enumerate(cell.cells):
                self.cell(f"{prefix}/cells/{i}", c)
            return
        self.add(f"{prefix}/kernel", cell.kernel)
        self.add(f"{prefix}/recurrent_kernel", cell.recurrent_kernel)
        self.add(f"{prefix}/bias", cell.bias)

    def any_cell(self, cell):
        if isinstance(cell, s2s.AttentionWrapper):
            self.cell("cell", cell._cell)
            mechs = cell._attention_mechanisms
            if cell._is_multi:
                for i, m in enumerate(mechs):
                    self.mechanism(f"mechanisms/{i}", m)
            else:
                self.mechanism("mechanism", mechs[0])
            for i, layer in enumerate(cell._attention_layers or []):
                self.add(f"wrapper/attention_layers/{i}/kernel", layer.kernel)
        else:
            self.cell("cell", cell)


def assign_all(obj, reg, seed, post=None):
    """Overwrites every variable of `obj` with seeded values; returns (weights, order)."""
    rs = np.random.RandomState(seed)
    order, values, seen = [], {}, set()
    for var in obj.weights:
        if id(var) not in reg.paths:
            raise KeyError(f"no path for variable {var.name}")
        path = reg.paths[id(var)]
        assert path not in seen, path
        seen.add(path)
        order.append(path)
        leaf = path.rsplit("/", 1)[-1]
        if leaf in SCALARS and var.shape.rank == 0:
            values[path] = np.array(SCALARS[leaf], F32)
        else:
            values[path] = rs.uniform(-0.5, 0.5, var.shape.as_list()).astype(F32)
    assert len(seen) == len(reg.paths), (sorted(seen), sorted(reg.paths.values()))
    if post is not None:
        post(values)
    by_path = {reg.paths[id(v)]: v for v in obj.weights}
    for path, value in values.items():
        by_path[path].assign(value)
    # TFA computes keys = memory_layer(memory) once, when the memory is set up: set it up
    # again so that the keys use the new memory_layer kernel.
    for m in reg.mechanisms:
        m.setup_memory(*m._fixture_memory)
    return {p: values[p].tolist() for p in order}, order


def case(name, kind, config, inputs, weights, order, outputs, input_dtypes=None):
    c = {"case": name, "kind": kind, "config": config, "inputs": to_json(inputs),
         "input_dtypes": input_dtypes if input_dtypes is not None else dtypes_of(inputs),
         "weights": weights, "weights_order": order,
         "outputs": to_json(outputs), "dtypes": dtypes_of(outputs)}
    return c


def write(filename, cases):
    names = [c["case"] for c in cases]
    assert len(names) == len(set(names)), names
    meta = {"tfa_version": tfa.__version__, "tf_version": tf.__version__,
            "keras_version": keras.__version__, "generator": "tests/tfa/make_fixtures.py",
            "gather_tree": "custom op" if not tfa.options.is_custom_kernel_disabled()
            else "python fallback"}
    for c in cases:
        text = json.dumps(c)
        assert "NaN" not in text, c["case"]
    body = ",\n".join(json.dumps(c, separators=(",", ":")) for c in cases)
    text = '{"meta":' + json.dumps(meta) + ',\n"cases":[\n' + body + "\n]}\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / filename).write_text(text)
    print(f"{filename}: {len(cases)} cases, {len(text)} bytes")
    for n in names:
        print("   ", n)


def memory_inputs(rs, batch=B):
    """Memory [batch, S, D] and its lengths, the second row shorter than S."""
    memory = rs.uniform(-1.0, 1.0, (batch, S, D)).astype(F32)
    msl = np.array([S, S - 2, S][:batch], I32)
    return memory, msl


def make_mechanism(spec, memory, msl):
    kwargs = {k: v for k, v in spec.items() if k != "class"}
    m = getattr(s2s, spec["class"])(memory=memory, memory_sequence_length=msl, **kwargs)
    m._fixture_memory = (memory, msl)
    return m


def make_cell(spec):
    if spec["class"] == "StackedRNNCells":
        return tf.keras.layers.StackedRNNCells([make_cell(c) for c in spec["cells"]])
    kwargs = {k: v for k, v in spec.items() if k != "class"}
    return getattr(tf.keras.layers, spec["class"])(**kwargs)


def lstm(units=UNITS):
    return {"class": "LSTMCell", "units": units}


# ---------------------------------------------------------------- A. mechanisms


def np_scores(spec, m, query):
    """Pre-probability scores recomputed in numpy (only to check the hard cases)."""
    keys = np_of(m.keys)
    if "Luong" in spec["class"]:
        score = np.einsum("bd,bsd->bs", query, keys)
        g = getattr(m, "scale_weight", None)
        if g is None:
            g = getattr(m, "attention_g", None)
        if g is not None:
            score = score * np_of(g)
    else:
        pq = query @ np_of(m.query_layer.kernel)
        v = np_of(m.attention_v)
        if m.attention_g is not None:
            v = np_of(m.attention_g) * v / np.sqrt(np.sum(v * v))
            score = np.sum(v * np.tanh(keys + pq[:, None] + np_of(m.attention_b)), -1)
        else:
            score = np.sum(v * np.tanh(keys + pq[:, None]), -1)
    if getattr(m, "attention_score_bias", None) is not None:
        score = score + np_of(m.attention_score_bias)
    return score


def mechanism_cases():
    specs = [
        ("luong", {"class": "LuongAttention", "units": 4}),
        ("luong_scale", {"class": "LuongAttention", "units": 4, "scale": True}),
        ("luong_hardmax", {"class": "LuongAttention", "units": 4, "probability_fn": "hardmax"}),
        ("bahdanau", {"class": "BahdanauAttention", "units": 4}),
        ("bahdanau_normalize", {"class": "BahdanauAttention", "units": 4, "normalize": True}),
        ("bahdanau_hardmax",
         {"class": "BahdanauAttention", "units": 4, "probability_fn": "hardmax"}),
    ]
    for mode in ("parallel", "recursive", "hard"):
        specs.append((f"bahdanau_monotonic_{mode}",
                      {"class": "BahdanauMonotonicAttention", "units": 4, "mode": mode,
                       "sigmoid_noise": 0.0}))
        specs.append((f"luong_monotonic_{mode}",
                      {"class": "LuongMonotonicAttention", "units": 4, "mode": mode,
                       "sigmoid_noise": 0.0}))
    specs += [
        ("bahdanau_monotonic_normalize_parallel",
         {"class": "BahdanauMonotonicAttention", "units": 4, "mode": "parallel",
          "normalize": True, "sigmoid_noise": 0.0}),
        ("luong_monotonic_scale_recursive",
         {"class": "LuongMonotonicAttention", "units": 4, "mode": "recursive", "scale": True,
          "sigmoid_noise": 0.0}),
    ]
    cases = []
    for name, spec in specs:
        rs = np.random.RandomState(seed_of("mech/" + name))
        memory, msl = memory_inputs(rs)
        monotonic = "Monotonic" in spec["class"]
        hard = spec.get("mode") == "hard"
        qdepth = 4 if "Luong" in spec["class"] else 5
        if hard:
            # A one-hot previous alignment, as hard monotonic attention expects.
            state = np.eye(S, dtype=F32)[[0, 1, 2]]
        else:
            state = rs.uniform(0.1, 1.0, (B, S)).astype(F32)
            state = (state / state.sum(1, keepdims=True)).astype(F32)
        m = make_mechanism(spec, memory, msl)
        m([tf.zeros((B, qdepth)), tf.constant(state)])  # builds the query-side weights
        reg = Registry()
        reg.mechanism("mechanism", m)
        post = None
        if hard and "Bahdanau" in spec["class"]:
            # |score| <= sum|attention_v| (plus the bias): larger values reach both signs.
            def post(values):
                values["mechanism/attention_v"] = (values["mechanism/attention_v"] * 8.0
                                                   ).astype(F32)
        weights, order = assign_all(m, reg, seed_of("mech/w/" + name), post)
        valid = np.arange(S)[None] < msl[:, None]
        for _ in range(200):
            query = rs.uniform(-1.0, 1.0, (B, qdepth)).astype(F32)
            if not hard:
                break
            # Hard mode thresholds the scores at 0: a query whose scores are far from 0
            # and which attends somewhere at or after the previous position in every row.
            query = (4.0 * query).astype(F32)
            score = np_scores(spec, m, query)
            after = np.cumsum(state, 1) > 0
            if (np.abs(score[valid]).min() > 0.05
                    and ((score > 0) & valid & after).any(1).all()):
                break
        else:
            raise AssertionError(f"no usable query for {name}")
        alignments, next_state = m([tf.constant(query), tf.constant(state)])
        if hard:
            assert (np_of(alignments).sum(1) == 1).all(), name
        if monotonic and spec.get("mode") != "hard":
            assert np.all(np_of(alignments) >= 0)
        outputs = {
            "alignments": alignments, "next_state": next_state,
            "keys": m.keys, "values": m.values,
            "initial_alignments": m.initial_alignments(B, tf.float32),
            "initial_state": m.initial_state(B, tf.float32),
        }
        config = {k: v for k, v in spec.items() if k != "class"}
        if post is not None:
            config["note"] = ("attention_v was drawn and multiplied by 8 so that the hard "
                              "scores reach both signs; the recorded weights are final")
        if hard:
            config["query_note"] = ("query chosen so that every unmasked score is at least "
                                    "0.05 away from 0; state is one-hot")
        config["call"] = ("mechanism = cls(units, memory=inputs.memory, memory_sequence_length="
                          "inputs.memory_sequence_length, **config); alignments, next_state = "
                          "mechanism([inputs.query, inputs.state]); initial_alignments/state "
                          "for batch_size=B, dtype float32")
        cases.append(case("mech_" + name, spec["class"], config,
                          {"memory": memory, "memory_sequence_length": msl, "query": query,
                           "state": state}, weights, order, outputs))
    return cases


# ---------------------------------------------------------- B. AttentionWrapper


def wrapper_cases():
    luong = {"class": "LuongAttention", "units": UNITS}
    luong_scale = {"class": "LuongAttention", "units": UNITS, "scale": True}
    bahdanau = {"class": "BahdanauAttention", "units": 4}
    bahdanau_norm = {"class": "BahdanauAttention", "units": 4, "normalize": True}
    specs = [
        # name, cell spec, mechanism spec(s), wrapper kwargs, initial cell state mode
        ("lstm_luong_size_none", lstm(), luong, {}, None),
        ("lstm_luong_scale_size_int", lstm(), luong_scale, {"attention_layer_size": 3}, None),
        ("lstm_bahdanau_norm_size_int_output_cell", lstm(), bahdanau_norm,
         {"attention_layer_size": 3, "output_attention": False}, None),
        ("lstm_luong_output_attention_false", lstm(), luong,
         {"attention_layer_size": 4, "output_attention": False}, None),
        ("lstm_luong_bahdanau_size_list_history", lstm(), [luong, bahdanau],
         {"attention_layer_size": [3, 2], "alignment_history": True}, None),
        ("lstm_luong_bahdanau_size_none", lstm(), [luong, bahdanau], {}, None),
        ("lstm_bahdanau_size_none_output_cell_history", lstm(), bahdanau,
         {"output_attention": False, "alignment_history": True}, None),
        ("lstm_bahdanau_alignment_history", lstm(), bahdanau,
         {"attention_layer_size": 4, "alignment_history": True}, None),
        ("gru_luong_size_int", {"class": "GRUCell", "units": UNITS, "reset_after": True},
         luong, {"attention_layer_size": 3}, None),
        ("stacked_lstm_bahdanau_size_int",
         {"class": "StackedRNNCells", "cells": [lstm(), lstm()]}, bahdanau,
         {"attention_layer_size": 4}, None),
        ("lstm_luong_initial_cell_state_clone", lstm(), luong,
         {"attention_layer_size": 3}, "clone"),
        ("lstm_bahdanau_initial_cell_state_ctor", lstm(), bahdanau,
         {"attention_layer_size": 3}, "constructor"),
        ("lstm_luong_monotonic_parallel_history", lstm(),
         {"class": "LuongMonotonicAttention", "units": UNITS, "mode": "parallel"},
         {"attention_layer_size": 3, "alignment_history": True}, None),
        ("lstm_bahdanau_monotonic_recursive", lstm(),
         {"class": "BahdanauMonotonicAttention", "units": 4, "mode": "recursive"},
         {"attention_layer_size": 3}, None),
    ]
    cases = []
    for name, cell_spec, mech_spec, wkw, init_mode in specs:
        rs = np.random.RandomState(seed_of("aw/" + name))
        memory, msl = memory_inputs(rs)
        inputs = rs.uniform(-1.0, 1.0, (B, T, I_DIM)).astype(F32)
        multi = isinstance(mech_spec, list)
        mech_list = mech_spec if multi else [mech_spec]
        cell_state0 = None
        if init_mode is not None:
            cell_state0 = [rs.uniform(-1.0, 1.0, (B, UNITS)).astype(F32) for _ in range(2)]

        mechs = [make_mechanism(sp, memory, msl) for sp in mech_list]
        kw = dict(wkw)
        if init_mode == "constructor":
            kw["initial_cell_state"] = [tf.constant(x) for x in cell_state0]
        cell = s2s.AttentionWrapper(make_cell(cell_spec), mechs if multi else mechs[0], **kw)

        def run():
            state = cell.get_initial_state(batch_size=B, dtype=tf.float32)
            if init_mode == "clone":
                state = state.clone(cell_state=[tf.constant(x) for x in cell_state0])
            outs = []
            for t in range(T):
                out, state = cell(tf.constant(inputs[:, t]), state)
                outs.append(np_of(out))
            for ta in tf.nest.flatten(state.alignment_history):
                ta.mark_used()  # the warm-up run leaves its history unread
            return np.stack(outs, 1), state

        run()
        reg = Registry()
        reg.any_cell(cell)
        weights, order = assign_all(cell, reg, seed_of("aw/w/" + name))
        outs, state = run()
        outputs = {
            "outputs": outs,
            "cell_state": flat_state(state.cell_state),
            "attention": state.attention,
            "alignments": list(state.alignments) if multi else state.alignments,
            "attention_state": list(state.attention_state) if multi else state.attention_state,
        }
        if wkw.get("alignment_history"):
            hist = state.alignment_history
            outputs["alignment_history"] = ([h.stack() for h in hist] if multi
                                            else hist.stack())
        config = {
            "cell": cell_spec,
            "attention_mechanism": mech_spec,
            "attention_layer_size": wkw.get("attention_layer_size"),
            "output_attention": wkw.get("output_attention", True),
            "alignment_history": wkw.get("alignment_history", False),
            "initial_cell_state": init_mode,
            "steps": T,
            "call": ("mechanisms built with memory=inputs.memory, memory_sequence_length="
                     "inputs.memory_sequence_length; state = wrapper.get_initial_state("
                     "batch_size=B, dtype=float32) [clone: .clone(cell_state="
                     "inputs.initial_cell_state); constructor: AttentionWrapper(..., "
                     "initial_cell_state=inputs.initial_cell_state)]; then for t in range(T): "
                     "out, state = wrapper(inputs.inputs[:, t], state); outputs.outputs stacks "
                     "out on axis 1 ([B, T, ...]); the other outputs are the final state's "
                     "fields (cell_state flattened with tf.nest.flatten; alignments, "
                     "attention_state and alignment_history are lists over mechanisms when "
                     "several are given; alignment_history is TensorArray.stack(): [T, B, S])"),
        }
        case_inputs = {"memory": memory, "memory_sequence_length": msl, "inputs": inputs}
        if cell_state0 is not None:
            case_inputs["initial_cell_state"] = cell_state0
        cases.append(case("aw_" + name, "AttentionWrapper", config, case_inputs, weights, order,
                          outputs))
    return cases


# ------------------------------------------------ C. BasicDecoder with samplers


def first_occurrences(ids, token):
    occ = []
    for row in ids:
        hits = np.nonzero(row == token)[0]
        occ.append(int(hits[0]) if len(hits) else None)
    return occ


def pick_end_token(ids, require_all=False):
    """An end token for a probe run's ids [B, steps]: some row emits it early (at step 1
    to 3, not 0), the rows' first occurrences differ and one row runs 3 steps or more.
    Raises AssertionError when the ids are too uniform (fewer than two rows change their
    token over time)."""
    varied = sum(len(set(row[:4].tolist())) > 1 for row in ids)
    assert varied >= 2, ids
    best = None
    for tok in range(V):
        occ = first_occurrences(ids, tok)
        known = [o for o in occ if o is not None]
        if not known or not 1 <= min(known) <= 3 or len(set(occ)) < 2:
            continue
        if all(o is not None and o < 2 for o in occ):
            continue
        if require_all and len(known) != len(occ):
            continue
        key = (-len(set(occ)), min(known))
        if best is None or key < best[0]:
            best = (key, tok)
    assert best is not None, ids
    return best[1]


def decoder_model(cell_kind, rs, batch=B):
    """An (untrained) cell plus its initial-state recipe. cell_kind: lstm / luong / bahdanau."""
    memory, msl = memory_inputs(rs, batch)
    h0 = rs.uniform(-1.0, 1.0, (batch, UNITS)).astype(F32)
    c0 = rs.uniform(-1.0, 1.0, (batch, UNITS)).astype(F32)
    inputs = {"initial_cell_state": [h0, c0]}
    if cell_kind == "lstm":
        cell = tf.keras.layers.LSTMCell(UNITS)
        cell_cfg = {"cell": lstm()}

        def init_state():
            return [tf.constant(h0), tf.constant(c0)]
    else:
        spec = ({"class": "LuongAttention", "units": UNITS} if cell_kind == "luong"
                else {"class": "BahdanauAttention", "units": 4})
        mech = make_mechanism(spec, memory, msl)
        cell = s2s.AttentionWrapper(tf.keras.layers.LSTMCell(UNITS), mech,
                                    attention_layer_size=UNITS)
        cell_cfg = {"cell": {"class": "AttentionWrapper", "cell": lstm(),
                             "attention_mechanism": spec, "attention_layer_size": UNITS,
                             "output_attention": True}}
        inputs["memory"] = memory
        inputs["memory_sequence_length"] = msl

        def init_state():
            return cell.get_initial_state(batch_size=batch, dtype=tf.float32).clone(
                cell_state=[tf.constant(h0), tf.constant(c0)])
    cell_cfg["initial_state"] = (
        "[inputs.initial_cell_state[0], inputs.initial_cell_state[1]] (the LSTM's [h, c])"
        if cell_kind == "lstm" else
        "cell.get_initial_state(batch_size=B, dtype=float32).clone(cell_state="
        "inputs.initial_cell_state)")
    return cell, cell_cfg, init_state, inputs


def final_cell_state(state):
    if isinstance(state, s2s.AttentionWrapperState):
        return flat_state(state.cell_state)
    return flat_state(state)


def decoder_outputs(outputs, state, lengths):
    out = {"rnn_output": outputs.rnn_output, "sample_id": outputs.sample_id,
           "final_sequence_lengths": lengths, "final_cell_state": final_cell_state(state)}
    if isinstance(state, s2s.AttentionWrapperState):
        out["final_attention"] = state.attention
        out["final_alignments"] = state.alignments
    return out


BASIC_CALL = ("outputs, final_state, final_sequence_lengths = decoder(<first arg>, "
              "initial_state=<initial state>, **<call kwargs>) with decoder = BasicDecoder("
              "cell, sampler, output_layer=Dense(V), **<decoder kwargs>); outputs are "
              "batch-major [B, T, ...] (output_time_major False); final_cell_state is "
              "tf.nest.flatten of the LSTM state ([h, c])")


def basic_decoder_cases():
    cases = []

    def build(name, cell_kind, sampler_fn, sampler_cfg, first_arg_fn, call_kw_fn,
              decoder_kw=None, post=None, extra_inputs=None, check=None, record=None,
              end_token_probe=False, extra_config=None, accept=None):
        rs = np.random.RandomState(seed_of("bd/" + name))
        cell, cell_cfg, init_state, inputs = decoder_model(cell_kind, rs)
        embedding = rs.uniform(-1.0, 1.0, (V, E)).astype(F32)
        data = dict(extra_inputs(rs) if extra_inputs else {})
        output_layer = tf.keras.layers.Dense(V)
        holder = {}

        def run(end_token):
            sampler = sampler_fn(embedding, end_token)
            dec = s2s.BasicDecoder(cell, sampler, output_layer=output_layer,
                                   **(decoder_kw or {}))
            holder["decoder"] = dec
            return dec(first_arg_fn(embedding, data), initial_state=init_state(),
                       **call_kw_fn(embedding, data, end_token))

        run(-1)
        reg = Registry()
        reg.any_cell(cell)
        reg.dense("output_layer", output_layer)
        end_token = None
        for attempt in range(100):
            # Weights under which some row emits a token early that another row does not.
            key = "bd/w/" + name + (f"/{attempt}" if attempt else "")
            weights, order = assign_all(holder["decoder"], reg, seed_of(key), post)
            if not end_token_probe and accept is None:
                break
            probe, _, _ = run(-1)
            if accept is not None:
                if accept(probe):
                    break
                continue
            ids = np_of(probe.sample_id)
            if ids.dtype != np.int32:
                ids = ids.argmax(-1)
            try:
                end_token = pick_end_token(ids)
                print(f"    bd_{name}: weights from attempt {attempt}, end token {end_token}")
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"no weights with distinct early end tokens for {name}")
        outputs, state, lengths = run(end_token if end_token is not None else -1)
        out = (record or std_record)(outputs, state, lengths, locals())
        if check:
            check(outputs, state, lengths)
        case_inputs = dict(inputs)
        case_inputs.update(data)
        if sampler_cfg.get("uses_embedding"):
            weights = dict(weights)
            weights["embedding"] = embedding.tolist()
        config = dict(cell_cfg)
        config["sampler"] = {k: v for k, v in sampler_cfg.items() if k != "uses_embedding"}
        config["output_layer"] = {"units": V, "use_bias": True}
        config["decoder_kwargs"] = decoder_kw or {}
        config["call"] = BASIC_CALL
        if end_token is not None:
            case_inputs["end_token"] = np.array(end_token, I32)
        if extra_config:
            config.update(extra_config(locals()))
        cases.append(case("bd_" + name, "BasicDecoder", config, case_inputs, weights, order,
                          out))
        return outputs, state, lengths

    def std_record(outputs, state, lengths, env):
        return decoder_outputs(outputs, state, lengths)

    seq_len = np.array([T, T - 1, T], I32)

    # TrainingSampler, batch-major, sequence_length with one shorter row.
    def train_inputs(rs):
        return {"inputs": rs.uniform(-1.0, 1.0, (B, T, I_DIM)).astype(F32),
                "sequence_length": seq_len}

    def check_train(outputs, state, lengths):
        assert np_of(lengths).tolist() == seq_len.tolist()

    build("training_luong", "luong", lambda emb, end: s2s.TrainingSampler(),
          {"class": "TrainingSampler", "time_major": False},
          lambda emb, d: tf.constant(d["inputs"]),
          lambda emb, d, end: {"sequence_length": tf.constant(d["sequence_length"])},
          extra_inputs=train_inputs, check=check_train,
          extra_config=lambda env: {"call_kwargs": {"sequence_length": "inputs."
                                                    "sequence_length"},
                                    "first_arg": "inputs.inputs [B, T, I]"})

    def train_inputs_tm(rs):
        return {"inputs": rs.uniform(-1.0, 1.0, (T, B, I_DIM)).astype(F32),
                "sequence_length": seq_len}

    build("training_time_major_lstm", "lstm", lambda emb, end: s2s.TrainingSampler(True),
          {"class": "TrainingSampler", "time_major": True},
          lambda emb, d: tf.constant(d["inputs"]),
          lambda emb, d, end: {"sequence_length": tf.constant(d["sequence_length"])},
          extra_inputs=train_inputs_tm, check=check_train,
          extra_config=lambda env: {"call_kwargs": {"sequence_length": "inputs."
                                                    "sequence_length"},
                                    "first_arg": "inputs.inputs, TIME-MAJOR [T, B, I]; "
                                                 "outputs are still batch-major"})

    # GreedyEmbeddingSampler: an end token that one row emits early.
    def greedy_inputs(rs):
        return {"start_tokens": np.array([0, 3, 5], I32)}

    def greedy_check(outputs, state, lengths):
        ln = np_of(lengths)
        steps = np_of(outputs.sample_id).shape[1]
        assert len(set(ln.tolist())) > 1 and ln.min() < steps, ln

    for kind in ("bahdanau", "lstm"):
        build(f"greedy_embedding_{kind}", kind,
              lambda emb, end: s2s.GreedyEmbeddingSampler(),
              {"class": "GreedyEmbeddingSampler", "uses_embedding": True},
              lambda emb, d: tf.constant(emb),
              lambda emb, d, end: {"start_tokens": tf.constant(d["start_tokens"]),
                                   "end_token": end},
              decoder_kw={"maximum_iterations": 6}, extra_inputs=greedy_inputs,
              check=greedy_check, end_token_probe=True,
              extra_config=lambda env: {
                  "first_arg": "weights.embedding [V, E]",
                  "call_kwargs": {"start_tokens": "inputs.start_tokens",
                                  "end_token": "inputs.end_token"}})

    # InferenceSampler: argmax ids fed back through the embedding.
    def inf_inputs(rs):
        return {"start_inputs": rs.uniform(-1.0, 1.0, (B, E)).astype(F32)}

    def make_inf_argmax(emb, end):
        return s2s.InferenceSampler(
            sample_fn=lambda logits: tf.argmax(logits, -1, output_type=tf.int32),
            sample_shape=[], sample_dtype=tf.int32,
            end_fn=lambda ids: tf.equal(ids, end),
            next_inputs_fn=lambda ids: tf.nn.embedding_lookup(emb, ids))

    build("inference_argmax", "lstm", make_inf_argmax,
          {"class": "InferenceSampler", "uses_embedding": True,
           "sample_fn": "argmax(logits, axis=-1) as int32",
           "sample_shape": [], "sample_dtype": "int32",
           "end_fn": "sample_ids == inputs.end_token",
           "next_inputs_fn": "embedding lookup: weights.embedding[sample_ids]"},
          lambda emb, d: tf.constant(d["start_inputs"]),
          lambda emb, d, end: {},
          decoder_kw={"maximum_iterations": 6}, extra_inputs=inf_inputs,
          check=greedy_check, end_token_probe=True,
          extra_config=lambda env: {"first_arg": "inputs.start_inputs [B, E]",
                                    "call_kwargs": {}})

    # InferenceSampler with a float sample of shape [V] fed back as the next input.
    def inf_float_inputs(rs):
        return {"start_inputs": rs.uniform(-1.0, 1.0, (B, V)).astype(F32)}

    def make_inf_float(emb, end):
        return s2s.InferenceSampler(
            sample_fn=lambda logits: tf.nn.softmax(logits),
            sample_shape=[V], sample_dtype=tf.float32,
            end_fn=lambda probs: tf.equal(tf.argmax(probs, -1, output_type=tf.int32), end),
            next_inputs_fn=None)

    build("inference_softmax_float", "lstm", make_inf_float,
          {"class": "InferenceSampler", "sample_fn": "softmax(logits, axis=-1)",
           "sample_shape": [V], "sample_dtype": "float32",
           "end_fn": "argmax(sample, axis=-1) == inputs.end_token",
           "next_inputs_fn": None},
          lambda emb, d: tf.constant(d["start_inputs"]),
          lambda emb, d, end: {},
          decoder_kw={"maximum_iterations": 5}, extra_inputs=inf_float_inputs,
          end_token_probe=True, check=greedy_check,
          extra_config=lambda env: {"first_arg": "inputs.start_inputs [B, V]",
                                    "call_kwargs": {}})

    # CustomSampler with simple deterministic functions.
    custom_text = {
        "initialize_fn": "def initialize_fn(inputs): return (tf.zeros([B], tf.bool), inputs)",
        "sample_fn": ("def sample_fn(time, outputs, state): "
                      "return tf.argmax(outputs, -1, output_type=tf.int32)"),
        "next_inputs_fn": ("def next_inputs_fn(time, outputs, state, sample_ids): "
                           "finished = tf.logical_or(tf.equal(sample_ids, END), time + 1 >= 4); "
                           "next_inputs = tf.nn.embedding_lookup(embedding, sample_ids) "
                           "+ 0.1 * tf.cast(time, tf.float32); "
                           "return (finished, next_inputs, state)"),
        "END": "inputs.end_token",
        "embedding": "weights.embedding",
        "sample_ids_shape": None, "sample_ids_dtype": None,
    }

    def make_custom(emb, end):
        def initialize_fn(inputs):
            return tf.zeros([B], tf.bool), inputs

        def sample_fn(time, outputs, state):
            return tf.argmax(outputs, -1, output_type=tf.int32)

        def next_inputs_fn(time, outputs, state, sample_ids):
            finished = tf.logical_or(tf.equal(sample_ids, end), time + 1 >= 4)
            nxt = tf.nn.embedding_lookup(emb, sample_ids) + 0.1 * tf.cast(time, tf.float32)
            return finished, nxt, state

        return s2s.CustomSampler(initialize_fn, sample_fn, next_inputs_fn)

    build("custom_sampler", "lstm", make_custom,
          dict(custom_text, **{"class": "CustomSampler", "uses_embedding": True}),
          lambda emb, d: tf.constant(d["start_inputs"]),
          lambda emb, d, end: {}, extra_inputs=lambda rs: {
              "start_inputs": rs.uniform(-1.0, 1.0, (B, E)).astype(F32)},
          end_token_probe=True,
          extra_config=lambda env: {"first_arg": "inputs.start_inputs [B, E]",
                                    "call_kwargs": {}})

    # ScheduledEmbeddingTrainingSampler at 0.0 (always the given inputs) and 1.0 (always the
    # embedding of an id sampled from the logits; the output layer is scaled so that the
    # sample is the argmax up to a probability below 1e-6).
    def sched_emb_check(prob):
        def check(outputs, state, lengths):
            ids = np_of(outputs.sample_id)
            logits = np_of(outputs.rnn_output)
            if prob == 0.0:
                assert (ids == -1).all()
            else:
                assert (ids == logits.argmax(-1)).all()
                assert min_gap(outputs) > 15.0
        return check

    def min_gap(outputs):
        top = np.sort(np_of(outputs.rnn_output), -1)
        return (top[..., -1] - top[..., -2]).min()

    def scale_output(factor):
        def post(values):
            values["output_layer/kernel"] = (values["output_layer/kernel"] * factor).astype(F32)
            values["output_layer/bias"] = (values["output_layer/bias"] * factor).astype(F32)
        return post

    for prob in (0.0, 1.0):
        tag = "0" if prob == 0.0 else "1"
        build(f"scheduled_embedding_p{tag}", "lstm",
              lambda emb, end, prob=prob: s2s.ScheduledEmbeddingTrainingSampler(
                  sampling_probability=prob, seed=7, scheduling_seed=11),
              {"class": "ScheduledEmbeddingTrainingSampler", "sampling_probability": prob,
               "uses_embedding": True, "seed": 7, "scheduling_seed": 11},
              lambda emb, d: tf.constant(d["inputs"]),
              lambda emb, d, end: {"sequence_length": tf.constant(d["sequence_length"]),
                                   "embedding": tf.constant(emb)},
              extra_inputs=lambda rs: {
                  "inputs": rs.uniform(-1.0, 1.0, (B, T, E)).astype(F32),
                  "sequence_length": seq_len},
              post=scale_output(200.0) if prob == 1.0 else None,
              accept=(lambda o: min_gap(o) > 15.0) if prob == 1.0 else None,
              check=sched_emb_check(prob),
              extra_config=lambda env: {
                  "first_arg": "inputs.inputs [B, T, E]",
                  "call_kwargs": {"sequence_length": "inputs.sequence_length",
                                  "embedding": "weights.embedding"},
                  "note": ("sample_id is -1 where the given input is kept; at probability 1 "
                           "it is a categorical sample of the logits, made (near) certain by "
                           "an output layer scaled by 200: it equals argmax(rnn_output) in the "
                           "recorded run and the top-2 logit gap exceeds 15 everywhere")})

    # ScheduledOutputTrainingSampler: inputs have depth V so that outputs can be fed back.
    def sched_out_inputs(aux):
        def f(rs):
            d = {"inputs": rs.uniform(-1.0, 1.0, (B, T, V)).astype(F32),
                 "sequence_length": seq_len}
            if aux:
                d["auxiliary_inputs"] = rs.uniform(-1.0, 1.0, (B, T, 2)).astype(F32)
            return d
        return f

    for tag, prob, aux, nif in (("p0", 0.0, False, None), ("p1", 1.0, False, None),
                                ("p1_auxiliary", 1.0, True, None),
                                ("p1_next_inputs_fn_softmax", 1.0, False, "softmax")):
        def call_kw(emb, d, end, aux=aux):
            kw = {"sequence_length": tf.constant(d["sequence_length"])}
            if aux:
                kw["auxiliary_inputs"] = tf.constant(d["auxiliary_inputs"])
            return kw

        def check(outputs, state, lengths, prob=prob):
            ids = np_of(outputs.sample_id)
            assert (ids == (1 if prob == 1.0 else 0)).all(), ids

        build(f"scheduled_output_{tag}", "lstm",
              lambda emb, end, prob=prob, nif=nif: s2s.ScheduledOutputTrainingSampler(
                  sampling_probability=prob, seed=7,
                  next_inputs_fn=tf.nn.softmax if nif else None),
              {"class": "ScheduledOutputTrainingSampler", "sampling_probability": prob,
               "seed": 7, "next_inputs_fn": "tf.nn.softmax (on the sampled rows' outputs)"
               if nif else None},
              lambda emb, d: tf.constant(d["inputs"]),
              call_kw, extra_inputs=sched_out_inputs(aux), check=check,
              extra_config=lambda env, aux=aux: {
                  "first_arg": "inputs.inputs [B, T, V]",
                  "call_kwargs": dict({"sequence_length": "inputs.sequence_length"},
                                      **({"auxiliary_inputs": "inputs.auxiliary_inputs "
                                          "[B, T, 2]; the cell then sees depth V + 2"}
                                         if aux else {})),
                  "note": ("sample_id is the int32 Bernoulli draw (1 = the step's output "
                           "(logits) becomes the next input, 0 = the given input is kept)")})

    # SampleEmbeddingSampler: only the deterministic first-step logits are compared.
    for tag, temp in (("temperature_0_7", 0.7), ("no_temperature", None)):
        def sample_record(outputs, state, lengths, env, temp=temp):
            logits = np_of(outputs.rnn_output)[:, 0]
            scaled = logits / np.float32(temp) if temp is not None else logits
            probs = np_of(tf.nn.softmax(tf.constant(scaled)))
            # Empirical check through TFA itself: 2000 copies of each row, one step.
            n = 2000
            env_inputs = env["inputs"]
            h0, c0 = env_inputs["initial_cell_state"]
            starts = env["data"]["start_tokens"]
            dec1 = s2s.BasicDecoder(env["cell"], s2s.SampleEmbeddingSampler(
                softmax_temperature=temp, seed=3), output_layer=env["output_layer"],
                maximum_iterations=1)
            tf.random.set_seed(5)
            o1, _, _ = dec1(tf.constant(env["embedding"]),
                            initial_state=[tf.constant(np.repeat(h0, n, 0)),
                                           tf.constant(np.repeat(c0, n, 0))],
                            start_tokens=tf.constant(np.repeat(starts, n)), end_token=-1)
            ids = np_of(o1.sample_id)[:, 0].reshape(B, n)
            freq = np.stack([np.bincount(r, minlength=V) / n for r in ids]).astype(F32)
            assert np.abs(freq - probs).max() < 0.05, (freq, probs)
            return {"first_step_logits": logits, "first_step_probs": probs,
                    "tfa_empirical_first_step_freq": freq}

        build(f"sample_embedding_{tag}", "lstm",
              lambda emb, end, temp=temp: s2s.SampleEmbeddingSampler(
                  softmax_temperature=temp, seed=3),
              {"class": "SampleEmbeddingSampler", "softmax_temperature": temp, "seed": 3,
               "uses_embedding": True},
              lambda emb, d: tf.constant(emb),
              lambda emb, d, end: {"start_tokens": tf.constant(d["start_tokens"]),
                                   "end_token": 2},
              decoder_kw={"maximum_iterations": 4}, extra_inputs=greedy_inputs,
              record=sample_record,
              extra_config=lambda env: {
                  "first_arg": "weights.embedding [V, E]",
                  "call_kwargs": {"start_tokens": "inputs.start_tokens", "end_token": 2},
                  "note": ("random: sample ids are not recorded. first_step_logits = "
                           "rnn_output[:, 0] (deterministic); first_step_probs = "
                           "softmax(first_step_logits / softmax_temperature); "
                           "tfa_empirical_first_step_freq: frequencies of TFA's first-step "
                           "ids over 2000 copies of each row (decoder with "
                           "maximum_iterations=1), within 0.05 of first_step_probs")})
    return cases


# ------------------------------------------------------- D. BeamSearchDecoder


# The output layer's kernel is scaled so that the logits depend on the state, and
# BEAM_END_BIAS[seed key, early] is added to output_layer/bias[end_token]: with attention
# some beams of the second row finish (penalties then matter: the length penalty only
# changes the order between different lengths, the coverage penalty only applies to
# finished beams) and more finish in the early-end cases; the plain LSTM cases run every
# beam to maximum_iterations, their early-end one does not.
BEAM_KERNEL_SCALE = 8.0
BEAM_END_BIAS = {("beam_att", False): -1.5, ("beam_att", True): -1.0,
                 ("beam_lstm", False): -2.5, ("beam_lstm", True): 0.0}


def beam_cases():
    Bb = 2
    end_token = 2
    cases = []
    specs = [
        # name, seed key, attention?, decoder kwargs, early end tokens?
        ("plain", "beam_att", True, {"maximum_iterations": 7}, False),
        ("length_penalty", "beam_att", True,
         {"maximum_iterations": 7, "length_penalty_weight": 0.6}, False),
        ("coverage_penalty", "beam_att", True,
         {"maximum_iterations": 7, "coverage_penalty_weight": 0.4}, False),
        ("length_and_coverage_penalty", "beam_att", True,
         {"maximum_iterations": 7, "length_penalty_weight": 0.6,
          "coverage_penalty_weight": 0.4}, False),
        ("early_end", "beam_att", True, {"maximum_iterations": 7}, True),
        ("early_end_length_penalty", "beam_att", True,
         {"maximum_iterations": 7, "length_penalty_weight": 0.6}, True),
        ("max_iter_3", "beam_att", True, {"maximum_iterations": 3}, False),
        ("output_all_scores", "beam_att", True,
         {"maximum_iterations": 5, "output_all_scores": True}, False),
        ("early_end_output_all_scores", "beam_att", True,
         {"maximum_iterations": 5, "output_all_scores": True}, True),
        ("plain_lstm", "beam_lstm", False, {"maximum_iterations": 6}, False),
        ("plain_lstm_early_end", "beam_lstm", False, {"maximum_iterations": 6}, True),
    ]
    for name, key, attention, dkw, early in specs:
        rs = np.random.RandomState(seed_of(key))
        memory, msl = memory_inputs(rs, Bb)
        h0 = rs.uniform(-1.0, 1.0, (Bb, UNITS)).astype(F32)
        c0 = rs.uniform(-1.0, 1.0, (Bb, UNITS)).astype(F32)
        embedding = rs.uniform(-1.0, 1.0, (V, E)).astype(F32)
        start_tokens = np.array([1, 4], I32)
        mspec = {"class": "BahdanauAttention", "units": 4}
        if attention:
            mech = make_mechanism(mspec, s2s.tile_batch(tf.constant(memory), BEAM),
                                  s2s.tile_batch(tf.constant(msl), BEAM))
            cell = s2s.AttentionWrapper(tf.keras.layers.LSTMCell(UNITS), mech,
                                        attention_layer_size=UNITS)

            def init_state(cell=cell, h0=h0, c0=c0):
                return cell.get_initial_state(batch_size=Bb * BEAM, dtype=tf.float32).clone(
                    cell_state=s2s.tile_batch([tf.constant(h0), tf.constant(c0)], BEAM))
        else:
            cell = tf.keras.layers.LSTMCell(UNITS)

            def init_state(h0=h0, c0=c0):
                return s2s.tile_batch([tf.constant(h0), tf.constant(c0)], BEAM)
        output_layer = tf.keras.layers.Dense(V)
        decoder = s2s.BeamSearchDecoder(cell, BEAM, output_layer=output_layer, **dkw)

        def run(decoder=decoder, init_state=init_state, embedding=embedding,
                start_tokens=start_tokens):
            return decoder(tf.constant(embedding), start_tokens=tf.constant(start_tokens),
                           end_token=end_token, initial_state=init_state())

        run()
        reg = Registry()
        reg.any_cell(cell)
        reg.dense("output_layer", output_layer)
        bias_value = BEAM_END_BIAS[key, early]

        def post(values, bias_value=bias_value):
            values["output_layer/kernel"] = (values["output_layer/kernel"] * BEAM_KERNEL_SCALE
                                             ).astype(F32)
            if bias_value:
                b = values["output_layer/bias"].copy()
                b[end_token] += bias_value
                values["output_layer/bias"] = b.astype(F32)

        weights, order = assign_all(decoder, reg, seed_of(key + "/w"), post)
        weights["embedding"] = embedding.tolist()
        outputs, state, lengths = run()
        bso = outputs.beam_search_decoder_output
        steps = np_of(outputs.predicted_ids).shape[1]
        ln = np_of(state.lengths)
        fin = np_of(state.finished)
        if early:
            assert fin.any() and ln.min() < steps, (name, ln, steps)
            assert (np_of(bso.predicted_ids) == end_token).any()
        if dkw["maximum_iterations"] == 3:
            assert steps == 3
        out = {
            "predicted_ids": outputs.predicted_ids,
            "scores": bso.scores,
            "parent_ids": bso.parent_ids,
            "step_predicted_ids": bso.predicted_ids,
            "final_sequence_lengths": lengths,
            "log_probs": state.log_probs,
            "lengths": state.lengths,
            "finished": state.finished,
        }
        if dkw.get("coverage_penalty_weight"):
            out["accumulated_attention_probs"] = state.accumulated_attention_probs
        cs = state.cell_state
        out["final_cell_state"] = final_cell_state(cs)
        if attention:
            out["final_attention"] = cs.attention
            out["final_alignments"] = cs.alignments
        config = {
            "beam_width": BEAM,
            "cell": ({"class": "AttentionWrapper", "cell": lstm(), "attention_mechanism": mspec,
                      "attention_layer_size": UNITS, "output_attention": True}
                     if attention else lstm()),
            "output_layer": {"units": V, "use_bias": True},
            "decoder_kwargs": dkw,
            "maximum_iterations_via": "constructor",
            "early_end": early,
            "output_kernel_scale": BEAM_KERNEL_SCALE,
            "end_token_bias": bias_value,
            "call": ("memory, memory_sequence_length and the initial [h, c] are tiled with "
                     "tile_batch(x, beam_width) (each row repeated beam_width times); "
                     + ("initial_state = cell.get_initial_state(batch_size=B*beam_width, "
                        "dtype=float32).clone(cell_state=tiled [h, c]); " if attention else
                        "initial_state = tiled [h, c]; ")
                     + "decoder = BeamSearchDecoder(cell, beam_width, output_layer=Dense(V), "
                       "**decoder_kwargs); outputs, final_state, final_sequence_lengths = "
                       "decoder(weights.embedding, start_tokens=inputs.start_tokens, "
                       "end_token=inputs.end_token, initial_state=initial_state). "
                       "predicted_ids = outputs.predicted_ids (after gather_tree); scores, "
                       "parent_ids, step_predicted_ids = outputs.beam_search_decoder_output "
                       "fields; all [B, T, beam] (scores [B, T, beam, V] with output_all_scores)"
                       "; log_probs, lengths (int64), finished are the final "
                       "BeamSearchDecoderState's [B, beam]; final_cell_state is the flattened "
                       "LSTM state [h, c], each [B, beam, units]; the recorded weights are final: "
                       "output_layer/kernel was already multiplied by output_kernel_scale "
                       "and end_token_bias added to output_layer/bias[end_token]"),
        }
        inputs = {"initial_cell_state": [h0, c0], "start_tokens": start_tokens,
                  "end_token": np.array(end_token, I32)}
        if attention:
            inputs = {"memory": memory, "memory_sequence_length": msl, **inputs}
        cases.append(case("beam_" + name, "BeamSearchDecoder", config, inputs, weights, order,
                          out))
    return cases


# ---------------------------------------------------------------- E. utilities


def util_cases():
    cases = []
    rs = np.random.RandomState(seed_of("utils"))

    def add(name, kind, config, inputs, outputs, input_dtypes=None):
        cases.append(case(name, kind, config, inputs, {}, [], outputs, input_dtypes))

    # gather_tree: [max_time, batch, beam]
    step_ids = np.array([[[2, 5, 1], [4, 3, 0]],
                         [[6, 1, 3], [2, 2, 5]],
                         [[1, 4, 2], [6, 0, 3]],
                         [[5, 3, 6], [1, 4, 2]]], I32)
    parent_ids = np.array([[[0, 0, 0], [0, 0, 0]],
                           [[2, 0, 1], [1, 0, 2]],
                           [[1, 2, 0], [0, 0, 1]],
                           [[0, 1, 2], [2, 1, 0]]], I32)
    for name, lengths, end in (("full_length", [4, 4], 9),
                               ("shorter_row", [4, 2], 9),
                               ("end_token_mid_sequence", [4, 3], 2),
                               ("zero_and_over_length", [0, 6], 3)):
        ml = np.array(lengths, I32)
        out = s2s.gather_tree(step_ids, parent_ids, ml, end)
        add("gather_tree_" + name, "gather_tree",
            {"call": "gather_tree(step_ids, parent_ids, max_sequence_lengths, end_token)",
             "end_token": end},
            {"step_ids": step_ids, "parent_ids": parent_ids, "max_sequence_lengths": ml,
             "end_token": np.array(end, I32)}, {"beams": out})
    # The TFA docstring example.
    ex_ids = np.array([[[1, 2, 3]], [[4, 5, 6]], [[7, 8, 9]]], I32)
    ex_par = np.array([[[0, 0, 0]], [[0, 1, 1]], [[2, 1, 2]]], I32)
    add("gather_tree_docstring_example", "gather_tree", {"end_token": 10},
        {"step_ids": ex_ids, "parent_ids": ex_par, "max_sequence_lengths": np.array([3], I32),
         "end_token": np.array(10, I32)},
        {"beams": s2s.gather_tree(ex_ids, ex_par, [3], 10)})

    # gather_tree_from_array: t [max_time, batch, beam, depth], lengths [batch, beam].
    t_arr = rs.uniform(-1.0, 1.0, (4, 2, 3, 2)).astype(F32)
    for name, sl in (("full", [[4, 4, 4], [4, 4, 4]]), ("lengths", [[4, 2, 3], [1, 3, 2]])):
        sl = np.array(sl, I32)
        out = s2s.gather_tree_from_array(tf.constant(t_arr), tf.constant(parent_ids),
                                         tf.constant(sl))
        add("gather_tree_from_array_" + name, "gather_tree_from_array",
            {"call": "gather_tree_from_array(t, parent_ids, sequence_length)"},
            {"t": t_arr, "parent_ids": parent_ids, "sequence_length": sl}, {"ordered": out})
    # rank-3 t (no depth)
    t3 = rs.uniform(-1.0, 1.0, (4, 2, 3)).astype(F32)
    sl = np.array([[4, 2, 3], [1, 3, 2]], I32)
    add("gather_tree_from_array_rank3", "gather_tree_from_array",
        {"call": "gather_tree_from_array(t, parent_ids, sequence_length)"},
        {"t": t3, "parent_ids": parent_ids, "sequence_length": sl},
        {"ordered": s2s.gather_tree_from_array(tf.constant(t3), tf.constant(parent_ids),
                                               tf.constant(sl))})

    # tile_batch on a nested structure.
    nested = {"memory": rs.uniform(-1.0, 1.0, (2, 3, 2)).astype(F32),
              "lengths": np.array([3, 1], I32),
              "state": [rs.uniform(-1.0, 1.0, (2, 4)).astype(F32),
                        rs.uniform(-1.0, 1.0, (2, 4)).astype(F32)]}
    tiled = s2s.tile_batch(tf.nest.map_structure(tf.constant, nested), 3)
    add("tile_batch_nested", "tile_batch",
        {"multiplier": 3, "call": "tile_batch(t, multiplier) on the dict inputs.t "
         "({memory: [2,3,2] float32, lengths: [2] int32 (rank 1), state: list of two [2,4]})"},
        {"t": nested}, {"tiled": {k: tiled[k] for k in nested}})

    # hardmax, with a tie (argmax takes the first index) and a rank-3 input.
    logits = np.array([[0.1, 2.0, -1.0, 2.0], [3.0, 1.0, 0.5, -2.0],
                       [-1.0, -0.5, -0.7, -3.0]], F32)
    add("hardmax_rank2_tie", "hardmax", {"call": "hardmax(logits)"}, {"logits": logits},
        {"hardmax": s2s.hardmax(logits)})
    l3 = rs.uniform(-1.0, 1.0, (2, 3, 5)).astype(F32)
    add("hardmax_rank3", "hardmax", {"call": "hardmax(logits)"}, {"logits": l3},
        {"hardmax": s2s.hardmax(l3)})

    # safe_cumprod
    x = np.concatenate([rs.uniform(0.05, 1.0, (2, 5)),
                        np.array([[0.5, 0.0, 0.9, 1.0, 0.3]])]).astype(F32)
    for excl in (False, True):
        for rev in (False, True):
            name = f"safe_cumprod_exclusive_{excl}_reverse_{rev}".lower()
            add(name, "safe_cumprod",
                {"axis": 1, "exclusive": excl, "reverse": rev,
                 "call": "safe_cumprod(x, axis=1, exclusive=..., reverse=...)"},
                {"x": x}, {"cumprod": s2s.safe_cumprod(x, axis=1, exclusive=excl,
                                                       reverse=rev)})

    # monotonic_attention in the three modes; previous attention not one-hot.
    prev = rs.uniform(0.1, 1.0, (3, 5)).astype(F32)
    prev = (prev / prev.sum(1, keepdims=True)).astype(F32)
    p_soft = rs.uniform(0.05, 0.95, (3, 5)).astype(F32)
    p_hard = np.array([[0, 1, 0, 1, 0], [1, 0, 0, 0, 1], [0, 0, 0, 0, 0]], F32)
    for mode, p in (("parallel", p_soft), ("recursive", p_soft), ("hard", p_hard),
                    ("parallel_binary_p", p_hard), ("recursive_binary_p", p_hard)):
        m = mode.split("_")[0]
        add(f"monotonic_attention_{mode}", "monotonic_attention",
            {"mode": m, "call": "monotonic_attention(p_choose_i, previous_attention, mode)"},
            {"p_choose_i": p, "previous_attention": prev},
            {"attention": s2s.monotonic_attention(p, prev, m)})
    onehot = np.eye(5, dtype=F32)[[0, 2, 4]]
    add("monotonic_attention_hard_one_hot_previous", "monotonic_attention",
        {"mode": "hard", "call": "monotonic_attention(p_choose_i, previous_attention, mode)"},
        {"p_choose_i": p_hard, "previous_attention": onehot},
        {"attention": s2s.monotonic_attention(p_hard, onehot, "hard")})

    # sequence_loss: every combination of the four flags (invalid ones raise ValueError).
    lg = rs.uniform(-2.0, 2.0, (2, 3, 5)).astype(F32)
    tg = np.array([[1, 4, 0], [2, 2, 3]], I32)
    w = np.array([[1.0, 0.5, 0.0], [1.0, 1.0, 2.0]], F32)
    flags = ("average_across_timesteps", "average_across_batch", "sum_over_timesteps",
             "sum_over_batch")
    for bits in range(16):
        kw = {f: bool(bits >> (3 - i) & 1) for i, f in enumerate(flags)}
        name = "sequence_loss_" + "".join("1" if kw[f] else "0" for f in flags)
        cfg = dict(kw, softmax_loss_function=None,
                   call="sequence_loss(logits, targets, weights, **flags); flag order in the "
                        "name: average_across_timesteps, average_across_batch, "
                        "sum_over_timesteps, sum_over_batch")
        try:
            loss = s2s.sequence_loss(tf.constant(lg), tf.constant(tg), tf.constant(w), **kw)
        except ValueError:
            cfg["raises"] = "ValueError"
            add(name, "sequence_loss", cfg, {"logits": lg, "targets": tg, "weights": w}, {})
            continue
        add(name, "sequence_loss", cfg, {"logits": lg, "targets": tg, "weights": w},
            {"loss": loss})
    onehot_t = np.eye(5, dtype=F32)[tg]
    add("sequence_loss_one_hot_targets", "sequence_loss",
        {"average_across_timesteps": True, "average_across_batch": True,
         "sum_over_timesteps": False, "sum_over_batch": False, "softmax_loss_function": None,
         "call": "sequence_loss(logits, targets, weights) with rank-3 one-hot targets"},
        {"logits": lg, "targets": onehot_t, "weights": w},
        {"loss": s2s.sequence_loss(tf.constant(lg), tf.constant(onehot_t), tf.constant(w))})

    # SequenceLoss class: defaults (sum over timesteps and batch) and another setting.
    loss_obj = s2s.SequenceLoss()
    add("SequenceLoss_defaults", "SequenceLoss",
        {"kwargs": {}, "defaults": {"average_across_timesteps": False,
                                    "average_across_batch": False,
                                    "sum_over_timesteps": True, "sum_over_batch": True},
         "call": "SequenceLoss()(y_true=targets, y_pred=logits, sample_weight=weights)"},
        {"logits": lg, "targets": tg, "weights": w},
        {"loss": loss_obj(tf.constant(tg), tf.constant(lg), sample_weight=tf.constant(w))})
    kw = {"average_across_timesteps": True, "average_across_batch": False,
          "sum_over_timesteps": False, "sum_over_batch": False}
    loss_obj = s2s.SequenceLoss(**kw)
    add("SequenceLoss_average_across_timesteps", "SequenceLoss",
        {"kwargs": kw,
         "call": "SequenceLoss(**kwargs)(y_true=targets, y_pred=logits, sample_weight=weights)"},
        {"logits": lg, "targets": tg, "weights": w},
        {"loss": loss_obj(tf.constant(tg), tf.constant(lg), sample_weight=tf.constant(w))})
    return cases


# ------------------------------------------------------------ F. dynamic_decode


def dynamic_decode_cases():
    cases = []
    key = "dd"
    rs = np.random.RandomState(seed_of(key))
    h0 = rs.uniform(-1.0, 1.0, (B, UNITS)).astype(F32)
    c0 = rs.uniform(-1.0, 1.0, (B, UNITS)).astype(F32)
    embedding = rs.uniform(-1.0, 1.0, (V, E)).astype(F32)
    start_tokens = np.array([0, 3, 5], I32)
    cell = tf.keras.layers.LSTMCell(UNITS)
    output_layer = tf.keras.layers.Dense(V)

    def run(end_token, max_iter, time_major=False, impute=False):
        dec = s2s.BasicDecoder(cell, s2s.GreedyEmbeddingSampler(), output_layer=output_layer)
        res = s2s.dynamic_decode(
            dec, output_time_major=time_major, impute_finished=impute,
            maximum_iterations=max_iter, decoder_init_input=tf.constant(embedding),
            decoder_init_kwargs={"initial_state": [tf.constant(h0), tf.constant(c0)],
                                 "start_tokens": tf.constant(start_tokens),
                                 "end_token": end_token})
        return dec, res

    dec, _ = run(-1, 2)
    reg = Registry()
    reg.cell("cell", cell)
    reg.dense("output_layer", output_layer)
    for attempt in range(100):
        # Weights under which one end token stops the rows at different steps within 6
        # steps, and another (or the same) stops every row within 12.
        weights, order = assign_all(dec, reg, seed_of(key + "/w" + (f"/{attempt}"
                                                                     if attempt else "")))
        _, (probe, _, _) = run(-1, 12)
        ids = np_of(probe.sample_id)
        try:
            end_token = pick_end_token(ids[:, :6])
            end_all = pick_end_token(ids, require_all=True)
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("no weights for the dynamic_decode cases")
    weights["embedding"] = embedding.tolist()
    print(f"    dynamic_decode: weights from attempt {attempt}, end token {end_token} (first "
          f"steps {first_occurrences(ids[:, :6], end_token)}), all-rows end token {end_all} "
          f"({first_occurrences(ids, end_all)})")

    variants = []
    for tm in (False, True):
        for imp in (False, True):
            variants.append((f"time_major_{tm}_impute_{imp}".lower(), tm, imp, 6, end_token))
    variants.append(("max_iter_2_impute_true", False, True, 2, end_token))
    variants.append(("no_max_iter_impute_true", False, True, None, end_all))
    variants.append(("no_max_iter_time_major_impute_false", True, False, None, end_all))
    for name, tm, imp, mi, end in variants:
        _, (outputs, state, lengths) = run(end, mi, tm, imp)
        ln = np_of(lengths)
        if mi is None or mi > 2:
            assert len(set(ln.tolist())) > 1, ln
        out = {"rnn_output": outputs.rnn_output, "sample_id": outputs.sample_id,
               "final_state": flat_state(state), "final_sequence_lengths": lengths}
        config = {
            "cell": lstm(), "sampler": {"class": "GreedyEmbeddingSampler"},
            "output_layer": {"units": V, "use_bias": True},
            "output_time_major": tm, "impute_finished": imp, "maximum_iterations": mi,
            "swap_memory": False,
            "call": ("decoder = BasicDecoder(cell, GreedyEmbeddingSampler(), output_layer="
                     "Dense(V)); outputs, final_state, final_sequence_lengths = dynamic_decode("
                     "decoder, output_time_major=..., impute_finished=..., maximum_iterations"
                     "=..., decoder_init_input=weights.embedding, decoder_init_kwargs={"
                     "initial_state: inputs.initial_state ([h, c]), start_tokens: "
                     "inputs.start_tokens, end_token: inputs.end_token}); rnn_output/sample_id "
                     "are [T, B, ...] when output_time_major else [B, T, ...]; final_state is "
                     "[h, c]"),
        }
        inputs = {"initial_state": [h0, c0], "start_tokens": start_tokens,
                  "end_token": np.array(end, I32)}
        cases.append(case("dd_" + name, "dynamic_decode", config, inputs, weights, order, out))
    return cases


FILES = {
    "mechanisms": mechanism_cases,
    "attention_wrapper": wrapper_cases,
    "basic_decoder": basic_decoder_cases,
    "beam_search": beam_cases,
    "utils": util_cases,
    "dynamic_decode": dynamic_decode_cases,
}


def main(names):
    """Writes the named files (all of them by default)."""
    for name in names or FILES:
        write(f"{name}.json", FILES[name]())


if __name__ == "__main__":
    main(sys.argv[1:])
