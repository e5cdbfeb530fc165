"""TensorFlow Addons' NMT tutorial (networks_seq2seq_nmt) on `seqzoo.tfa`.

The tutorial's model and its training and inference code, Spanish to
English: an encoder (Embedding + LSTM), a decoder that wraps an `LSTMCell`
in `tfa.seq2seq.AttentionWrapper` with `LuongAttention` (or
`BahdanauAttention`), teacher-forced training of a `BasicDecoder` with a
`TrainingSampler` in a `tf.GradientTape` step, then greedy translation with
`GreedyEmbeddingSampler` and beam search with `BeamSearchDecoder` and
`tile_batch`. Its `tfa` calls are the tutorial's; what migrates them from
TensorFlow Addons is the import line:

    from seqzoo import tfa          # was: import tensorflow_addons as tfa

Changes around the `tfa` code:

- the data is data/tfa-nmt/spa.txt (templated pairs, see its README)
  instead of the manythings.org download, and a numpy split replaces
  scikit-learn's `train_test_split`;
- `Decoder` takes the padded lengths as arguments instead of reading globals;
- the inference decoders get `maximum_iterations` (a TFA argument the
  tutorial leaves unset), so that a model that has not learned to emit
  `<end>` stops;
- sizes, epochs, the learning rate and the sentences to translate are
  options; checkpoints are written only with `--checkpoint-dir`. The
  defaults suit the small data set (units 256, embedding 64, 20 epochs, Adam
  at 0.003); the tutorial's values are `--units 1024 --embedding-dim 256
  --epochs 10 --learning-rate 0.001`.

From the repository root:

    python docs/examples/tfa_nmt.py
    python docs/examples/tfa_nmt.py --epochs 3 --units 64 --embedding-dim 32

`main(argv)` returns the losses and the translations (for tests/tfa/test_nmt_example.py).
"""

import argparse
import io
import os
import pathlib
import re
import time
import unicodedata

import numpy as np
import tensorflow as tf

from seqzoo import tfa

DATA = pathlib.Path(__file__).resolve().parents[2] / "data" / "tfa-nmt" / "spa.txt"
# The tutorial's example inputs (all in data/tfa-nmt/spa.txt).
SENTENCES = ["hace mucho frio aqui.", "esta es mi vida.", "¿todavia estan en casa?",
             "trata de averiguarlo."]


class NMTDataset:
    """Cleans, tokenizes and pads the pairs; `call` returns `tf.data` datasets and tokenizers."""

    def __init__(self, problem_type="en-spa", path=DATA, seed=0):
        self.problem_type = "en-spa"
        self.path = path
        self.seed = seed
        self.inp_lang_tokenizer = None
        self.targ_lang_tokenizer = None

    def unicode_to_ascii(self, s):
        return "".join(c for c in unicodedata.normalize("NFD", s)
                       if unicodedata.category(c) != "Mn")

    def preprocess_sentence(self, w):
        """Lowercase ASCII, punctuation split off, `<start>` and `<end>` added."""
        w = self.unicode_to_ascii(w.lower().strip())
        w = re.sub(r"([?.!,¿])", r" \1 ", w)
        w = re.sub(r'[" "]+', " ", w)
        w = re.sub(r"[^a-zA-Z?.!,¿]+", " ", w)
        w = w.strip()
        return "<start> " + w + " <end>"

    def create_dataset(self, path, num_examples):
        lines = io.open(path, encoding="UTF-8").read().strip().split("\n")
        word_pairs = [[self.preprocess_sentence(w) for w in line.split("\t")[:2]]
                      for line in lines[:num_examples]]
        return zip(*word_pairs)

    def tokenize(self, lang):
        lang_tokenizer = tf.keras.preprocessing.text.Tokenizer(filters="", oov_token="<OOV>")
        lang_tokenizer.fit_on_texts(lang)
        tensor = lang_tokenizer.texts_to_sequences(lang)
        tensor = tf.keras.preprocessing.sequence.pad_sequences(tensor, padding="post")
        return tensor, lang_tokenizer

    def load_dataset(self, path, num_examples=None):
        # The file is English<TAB>Spanish: the model translates Spanish to English.
        targ_lang, inp_lang = self.create_dataset(path, num_examples)
        input_tensor, inp_lang_tokenizer = self.tokenize(inp_lang)
        target_tensor, targ_lang_tokenizer = self.tokenize(targ_lang)
        return input_tensor, target_tensor, inp_lang_tokenizer, targ_lang_tokenizer

    def call(self, num_examples, BUFFER_SIZE, BATCH_SIZE):
        input_tensor, target_tensor, self.inp_lang_tokenizer, self.targ_lang_tokenizer = \
            self.load_dataset(self.path, num_examples)

        # scikit-learn's train_test_split(test_size=0.2), with numpy.
        order = np.random.default_rng(self.seed).permutation(len(input_tensor))
        n_val = int(np.ceil(0.2 * len(order)))
        train, val = order[n_val:], order[:n_val]

        train_dataset = tf.data.Dataset.from_tensor_slices((input_tensor[train],
                                                            target_tensor[train]))
        train_dataset = train_dataset.shuffle(BUFFER_SIZE, seed=self.seed).batch(
            BATCH_SIZE, drop_remainder=True)

        val_dataset = tf.data.Dataset.from_tensor_slices((input_tensor[val], target_tensor[val]))
        val_dataset = val_dataset.batch(BATCH_SIZE, drop_remainder=True)

        return train_dataset, val_dataset, self.inp_lang_tokenizer, self.targ_lang_tokenizer


class Encoder(tf.keras.Model):
    def __init__(self, vocab_size, embedding_dim, enc_units, batch_sz):
        super(Encoder, self).__init__()
        self.batch_sz = batch_sz
        self.enc_units = enc_units
        self.embedding = tf.keras.layers.Embedding(vocab_size, embedding_dim)
        self.lstm_layer = tf.keras.layers.LSTM(self.enc_units, return_sequences=True,
                                               return_state=True,
                                               recurrent_initializer="glorot_uniform")

    def call(self, x, hidden):
        x = self.embedding(x)
        output, h, c = self.lstm_layer(x, initial_state=hidden)
        return output, h, c

    def initialize_hidden_state(self):
        return [tf.zeros((self.batch_sz, self.enc_units)),
                tf.zeros((self.batch_sz, self.enc_units))]


class Decoder(tf.keras.Model):
    def __init__(self, vocab_size, embedding_dim, dec_units, batch_sz, max_length_input,
                 max_length_output, attention_type="luong"):
        super(Decoder, self).__init__()
        self.batch_sz = batch_sz
        self.dec_units = dec_units
        self.attention_type = attention_type
        self.max_length_output = max_length_output

        self.embedding = tf.keras.layers.Embedding(vocab_size, embedding_dim)
        # The logits; the loss applies the softmax.
        self.fc = tf.keras.layers.Dense(vocab_size)
        self.decoder_rnn_cell = tf.keras.layers.LSTMCell(self.dec_units)

        self.sampler = tfa.seq2seq.sampler.TrainingSampler()

        # The memory is set per batch with setup_memory; TFA ignores the
        # lengths given here without a memory, as the tutorial's call does.
        self.attention_mechanism = self.build_attention_mechanism(
            self.dec_units, None, self.batch_sz * [max_length_input], self.attention_type)

        self.rnn_cell = self.build_rnn_cell(batch_sz)
        self.decoder = tfa.seq2seq.BasicDecoder(self.rnn_cell, sampler=self.sampler,
                                                output_layer=self.fc)

    def build_rnn_cell(self, batch_sz):
        rnn_cell = tfa.seq2seq.AttentionWrapper(self.decoder_rnn_cell, self.attention_mechanism,
                                                attention_layer_size=self.dec_units)
        return rnn_cell

    def build_attention_mechanism(self, dec_units, memory, memory_sequence_length,
                                  attention_type="luong"):
        if attention_type == "bahdanau":
            return tfa.seq2seq.BahdanauAttention(units=dec_units, memory=memory,
                                                 memory_sequence_length=memory_sequence_length)
        return tfa.seq2seq.LuongAttention(units=dec_units, memory=memory,
                                          memory_sequence_length=memory_sequence_length)

    def build_initial_state(self, batch_sz, encoder_state, Dtype):
        decoder_initial_state = self.rnn_cell.get_initial_state(batch_size=batch_sz, dtype=Dtype)
        decoder_initial_state = decoder_initial_state.clone(cell_state=encoder_state)
        return decoder_initial_state

    def call(self, inputs, initial_state):
        x = self.embedding(inputs)
        outputs, _, _ = self.decoder(
            x, initial_state=initial_state,
            sequence_length=self.batch_sz * [self.max_length_output - 1])
        return outputs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="TensorFlow Addons' NMT tutorial (Spanish to English) on seqzoo.tfa.")
    parser.add_argument("--data", default=str(DATA),
                        help="English<TAB>Spanish pairs (default: data/tfa-nmt/spa.txt)")
    parser.add_argument("--num-examples", type=int, default=30000,
                        help="use the first N pairs (default: 30000, the tutorial's)")
    parser.add_argument("--batch-size", type=int, default=64, help="default: 64 (the tutorial's)")
    parser.add_argument("--embedding-dim", type=int, default=64,
                        help="default: 64 (the tutorial: 256)")
    parser.add_argument("--units", type=int, default=256, help="default: 256 (the tutorial: 1024)")
    parser.add_argument("--epochs", type=int, default=20, help="default: 20 (the tutorial: 10)")
    parser.add_argument("--learning-rate", type=float, default=0.003,
                        help="of Adam (default: 0.003; the tutorial: Adam's default, 0.001)")
    parser.add_argument("--attention", choices=["luong", "bahdanau"], default="luong",
                        help="the tutorial's attention_type (default: luong)")
    parser.add_argument("--beam-width", type=int, default=3, help="default: 3 (the tutorial's)")
    parser.add_argument("--translate", action="append", metavar="SENTENCE",
                        help="a Spanish sentence to translate (repeatable; default: the "
                             "tutorial's four)")
    parser.add_argument("--checkpoint-dir",
                        help="save a checkpoint every 2 epochs there and restore the latest "
                             "before translating (the tutorial's ./training_checkpoints)")
    parser.add_argument("--seed", type=int, default=0,
                        help="of the weights, the split and the shuffling (default: 0)")
    return parser.parse_args(argv)


def main(argv=None):
    """Runs the tutorial; returns its losses and translations as a dict."""
    args = parse_args(argv)
    tf.keras.utils.set_random_seed(args.seed)

    BUFFER_SIZE = 32000
    BATCH_SIZE = args.batch_size
    num_examples = args.num_examples

    dataset_creator = NMTDataset("en-spa", args.data, args.seed)
    train_dataset, val_dataset, inp_lang, targ_lang = dataset_creator.call(
        num_examples, BUFFER_SIZE, BATCH_SIZE)

    example_input_batch, example_target_batch = next(iter(train_dataset))

    vocab_inp_size = len(inp_lang.word_index) + 1
    vocab_tar_size = len(targ_lang.word_index) + 1
    max_length_input = example_input_batch.shape[1]
    max_length_output = example_target_batch.shape[1]

    embedding_dim = args.embedding_dim
    units = args.units
    steps_per_epoch = num_examples // BATCH_SIZE

    print("max_length_spanish, max_length_english, vocab_size_spanish, vocab_size_english")
    print(max_length_input, max_length_output, vocab_inp_size, vocab_tar_size)

    # The encoder and the decoder on one batch (this also creates their weights).
    encoder = Encoder(vocab_inp_size, embedding_dim, units, BATCH_SIZE)
    sample_hidden = encoder.initialize_hidden_state()
    sample_output, sample_h, sample_c = encoder(example_input_batch, sample_hidden)
    print("Encoder output shape: (batch size, sequence length, units)", sample_output.shape)
    print("Encoder h vector shape: (batch size, units)", sample_h.shape)
    print("Encoder c vector shape: (batch size, units)", sample_c.shape)

    decoder = Decoder(vocab_tar_size, embedding_dim, units, BATCH_SIZE, max_length_input,
                      max_length_output, args.attention)
    sample_x = tf.random.uniform((BATCH_SIZE, max_length_output))
    decoder.attention_mechanism.setup_memory(sample_output)
    initial_state = decoder.build_initial_state(BATCH_SIZE, [sample_h, sample_c], tf.float32)
    sample_decoder_outputs = decoder(sample_x, initial_state)
    print("Decoder Outputs Shape: ", sample_decoder_outputs.rnn_output.shape)

    optimizer = tf.keras.optimizers.Adam(args.learning_rate)

    def loss_function(real, pred):
        # real: (BATCH_SIZE, max_length_output), pred: (BATCH_SIZE, max_length_output, vocab)
        cross_entropy = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                      reduction="none")
        loss = cross_entropy(y_true=real, y_pred=pred)
        mask = tf.logical_not(tf.math.equal(real, 0))  # 0 on padding, else 1
        mask = tf.cast(mask, dtype=loss.dtype)
        loss = mask * loss
        loss = tf.reduce_mean(loss)
        return loss

    checkpoint_dir = args.checkpoint_dir
    if checkpoint_dir:
        checkpoint_prefix = os.path.join(checkpoint_dir, "ckpt")
        checkpoint = tf.train.Checkpoint(optimizer=optimizer, encoder=encoder, decoder=decoder)

    @tf.function
    def train_step(inp, targ, enc_hidden):
        loss = 0
        with tf.GradientTape() as tape:
            enc_output, enc_h, enc_c = encoder(inp, enc_hidden)

            dec_input = targ[:, :-1]  # without <end>
            real = targ[:, 1:]  # without <start>

            # The attention mechanism's memory: this batch's encoder outputs.
            decoder.attention_mechanism.setup_memory(enc_output)

            # The AttentionWrapperState that starts the decoder.
            decoder_initial_state = decoder.build_initial_state(BATCH_SIZE, [enc_h, enc_c],
                                                                tf.float32)
            pred = decoder(dec_input, decoder_initial_state)
            logits = pred.rnn_output
            loss = loss_function(real, logits)

        variables = encoder.trainable_variables + decoder.trainable_variables
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return loss

    batch_losses, epoch_losses = [], []
    for epoch in range(args.epochs):
        start = time.time()
        enc_hidden = encoder.initialize_hidden_state()
        total_loss = 0
        for (batch, (inp, targ)) in enumerate(train_dataset.take(steps_per_epoch)):
            batch_loss = train_step(inp, targ, enc_hidden)
            total_loss += batch_loss
            batch_losses.append(float(batch_loss))
            if batch % 100 == 0:
                print("Epoch {} Batch {} Loss {:.4f}".format(epoch + 1, batch,
                                                              batch_loss.numpy()))
        if checkpoint_dir and (epoch + 1) % 2 == 0:
            checkpoint.save(file_prefix=checkpoint_prefix)
        # The mean over the batches run (the train split holds fewer than steps_per_epoch).
        epoch_losses.append(float(total_loss / (batch + 1)))
        print("Epoch {} Loss {:.4f}".format(epoch + 1, epoch_losses[-1]))
        print("Time taken for 1 epoch {:.1f} sec\n".format(time.time() - start))

    def evaluate_sentence(sentence):
        sentence = dataset_creator.preprocess_sentence(sentence)

        inputs = [inp_lang.word_index[i] for i in sentence.split(" ")]
        inputs = tf.keras.preprocessing.sequence.pad_sequences([inputs], maxlen=max_length_input,
                                                                padding="post")
        inputs = tf.convert_to_tensor(inputs)
        inference_batch_size = inputs.shape[0]

        enc_start_state = [tf.zeros((inference_batch_size, units)),
                           tf.zeros((inference_batch_size, units))]
        enc_out, enc_h, enc_c = encoder(inputs, enc_start_state)

        start_tokens = tf.fill([inference_batch_size], targ_lang.word_index["<start>"])
        end_token = targ_lang.word_index["<end>"]

        greedy_sampler = tfa.seq2seq.GreedyEmbeddingSampler()

        # The decoder's cell and output layer, with the greedy sampler.
        decoder_instance = tfa.seq2seq.BasicDecoder(cell=decoder.rnn_cell,
                                                    sampler=greedy_sampler,
                                                    output_layer=decoder.fc,
                                                    maximum_iterations=max_length_output)
        decoder.attention_mechanism.setup_memory(enc_out)
        decoder_initial_state = decoder.build_initial_state(inference_batch_size,
                                                            [enc_h, enc_c], tf.float32)

        # The sampler embeds its own predictions with the decoder's embedding matrix.
        decoder_embedding_matrix = decoder.embedding.variables[0]

        outputs, _, _ = decoder_instance(decoder_embedding_matrix, start_tokens=start_tokens,
                                         end_token=end_token,
                                         initial_state=decoder_initial_state)
        return outputs.sample_id.numpy()

    def translate(sentence):
        result = evaluate_sentence(sentence)
        print(result)
        text = targ_lang.sequences_to_texts(result)
        print("Input: %s" % (sentence))
        print("Predicted translation: {}".format(text))
        return result, text

    def beam_evaluate_sentence(sentence, beam_width=3):
        sentence = dataset_creator.preprocess_sentence(sentence)

        inputs = [inp_lang.word_index[i] for i in sentence.split(" ")]
        inputs = tf.keras.preprocessing.sequence.pad_sequences([inputs], maxlen=max_length_input,
                                                                padding="post")
        inputs = tf.convert_to_tensor(inputs)
        inference_batch_size = inputs.shape[0]

        enc_start_state = [tf.zeros((inference_batch_size, units)),
                           tf.zeros((inference_batch_size, units))]
        enc_out, enc_h, enc_c = encoder(inputs, enc_start_state)

        start_tokens = tf.fill([inference_batch_size], targ_lang.word_index["<start>"])
        end_token = targ_lang.word_index["<end>"]

        # With an AttentionWrapper cell, BeamSearchDecoder needs the memory and
        # the encoder state tiled with tile_batch (not tf.tile), and the
        # initial state made for batch_size * beam_width.
        enc_out = tfa.seq2seq.tile_batch(enc_out, multiplier=beam_width)
        decoder.attention_mechanism.setup_memory(enc_out)
        print("beam_width * [batch_size, max_length_input, rnn_units]:", enc_out.shape)

        hidden_state = tfa.seq2seq.tile_batch([enc_h, enc_c], multiplier=beam_width)
        decoder_initial_state = decoder.rnn_cell.get_initial_state(
            batch_size=beam_width * inference_batch_size, dtype=tf.float32)
        decoder_initial_state = decoder_initial_state.clone(cell_state=hidden_state)

        decoder_instance = tfa.seq2seq.BeamSearchDecoder(decoder.rnn_cell, beam_width=beam_width,
                                                         output_layer=decoder.fc,
                                                         maximum_iterations=max_length_output)
        decoder_embedding_matrix = decoder.embedding.variables[0]

        outputs, final_state, sequence_lengths = decoder_instance(
            decoder_embedding_matrix, start_tokens=start_tokens, end_token=end_token,
            initial_state=decoder_initial_state)
        # outputs: a FinalBeamSearchDecoderOutput; predicted_ids and the step
        # scores are (batch, time, beam_width): transposed to (batch, beam_width, time).
        final_outputs = tf.transpose(outputs.predicted_ids, perm=(0, 2, 1))
        beam_scores = tf.transpose(outputs.beam_search_decoder_output.scores, perm=(0, 2, 1))
        return final_outputs.numpy(), beam_scores.numpy()

    def beam_translate(sentence, beam_width=3):
        result, beam_scores = beam_evaluate_sentence(sentence, beam_width)
        print(result.shape, beam_scores.shape)
        texts = []
        for beam, score in zip(result, beam_scores):
            output = targ_lang.sequences_to_texts(beam)
            output = [a.partition("<end>")[0].strip() for a in output]
            beam_score = [a.sum() for a in score]
            print("Input: %s" % (sentence))
            for i in range(len(output)):
                print("{} Predicted translation: {}  {}".format(i + 1, output[i], beam_score[i]))
            texts.append(output)
        return result, beam_scores, texts

    if checkpoint_dir:
        checkpoint.restore(tf.train.latest_checkpoint(checkpoint_dir))

    sentences = args.translate or SENTENCES
    greedy = {sentence: translate(sentence) for sentence in sentences}
    beam = {sentence: beam_translate(sentence, args.beam_width) for sentence in sentences}
    return {
        "batch_losses": batch_losses,
        "epoch_losses": epoch_losses,
        "greedy": greedy,
        "beam": beam,
        "vocab_tar_size": vocab_tar_size,
        "max_length_input": max_length_input,
        "max_length_output": max_length_output,
        "end_token": targ_lang.word_index["<end>"],
    }


if __name__ == "__main__":
    main()
