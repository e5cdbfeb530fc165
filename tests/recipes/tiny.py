"""Settings of the G2P recipe tests: a tiny model that trains in seconds."""

TINY = ["--set", "units=16", "--set", "embedding_dim=8", "--set", "decoder_units=16",
        "--set", "num_layers=1", "--set", "dropout=0",
        "--set", "batch_size=32", "--set", "learning_rate=0.01", "--set", "dev_words=40",
        "--set", "beam_size=3", "--quiet"]
