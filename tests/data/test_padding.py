import numpy as np
import pytest

from seqzoo.data import (
    check_right_padded,
    decoder_io,
    lengths_from_ids,
    mask_from_ids,
    pad_sequences,
)
from seqzoo.text.specials import BOS_ID, EOS_ID


def test_pad_sequences_right_pads_to_longest():
    out = pad_sequences([[5, 6, 7], [8], np.array([9, 10])])
    np.testing.assert_array_equal(out, [[5, 6, 7], [8, 0, 0], [9, 10, 0]])
    assert out.dtype == np.int32


def test_pad_sequences_maxlen_pad_id_and_dtype():
    out = pad_sequences([[5], [6, 7]], maxlen=4, pad_id=-1, dtype="int64")
    np.testing.assert_array_equal(out, [[5, -1, -1, -1], [6, 7, -1, -1]])
    assert out.dtype == np.int64


def test_pad_sequences_keeps_empty_sequences_as_pad_rows():
    np.testing.assert_array_equal(pad_sequences([[], [4, 5]]), [[0, 0], [4, 5]])


def test_pad_sequences_too_long_names_index_and_length():
    with pytest.raises(ValueError, match="Sequence 1 has length 3, longer than maxlen=2"):
        pad_sequences([[4], [4, 5, 6], [7]], maxlen=2)


def test_pad_sequences_truncates_when_asked():
    out = pad_sequences([[4], [4, 5, 6]], maxlen=2, truncate=True)
    np.testing.assert_array_equal(out, [[4, 0], [4, 5]])


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (([],), {}, "empty batch"),
        (([[1, 2]],), {"maxlen": 0}, "Received: maxlen=0"),
        (([[1, 2]],), {"maxlen": 2.5}, "Received: maxlen=2.5"),
        (([[1], [[2]]],), {}, "sequence 1 with shape \\(1, 1\\)"),
    ],
)
def test_pad_sequences_bad_input_raises(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pad_sequences(*args, **kwargs)


def test_decoder_io_hand_example():
    inputs, targets = decoder_io([[7, 8, 9], [10]])
    np.testing.assert_array_equal(inputs, [[BOS_ID, 7, 8, 9], [BOS_ID, 10, 0, 0]])
    np.testing.assert_array_equal(targets, [[7, 8, 9, EOS_ID], [10, EOS_ID, 0, 0]])
    assert inputs.dtype == targets.dtype == np.int32


def test_decoder_io_is_one_shift_of_the_same_ids():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(4, 50, size=n) for n in (1, 5, 3, 8)]
    inputs, targets = decoder_io(seqs, maxlen=12)
    assert inputs.shape == targets.shape == (4, 12)
    real = mask_from_ids(targets)
    np.testing.assert_array_equal(real, mask_from_ids(inputs))
    np.testing.assert_array_equal(inputs[:, 1:][real[:, 1:]], targets[:, :-1][real[:, 1:]])
    np.testing.assert_array_equal(lengths_from_ids(targets), [2, 6, 4, 9])


def test_decoder_io_maxlen_counts_the_extra_token():
    with pytest.raises(ValueError, match="len\\(target\\) \\+ 1"):
        decoder_io([[4, 5, 6]], maxlen=3)


def test_lengths_and_mask_from_ids():
    ids = np.array([[5, 6, 0, 0], [7, 0, 0, 0], [4, 4, 4, 4]])
    np.testing.assert_array_equal(lengths_from_ids(ids), [2, 1, 4])
    assert lengths_from_ids(ids).dtype == np.int32
    mask = mask_from_ids(ids)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask[0], [True, True, False, False])
    np.testing.assert_array_equal(lengths_from_ids([[9, 9, 0]], pad_id=9), [1])


def test_check_right_padded_accepts_right_padding():
    assert check_right_padded([[5, 6, 0], [7, 0, 0], [1, 2, 3]]) is None


def test_check_right_padded_names_first_bad_row():
    ids = [[5, 6, 0], [0, 7, 0], [8, 0, 9]]
    expected = "row 1 has id 7 at position 1 after pad_id=0 at position 0"
    with pytest.raises(ValueError, match=expected):
        check_right_padded(ids)


def test_check_right_padded_needs_2d():
    with pytest.raises(ValueError, match="ids.shape=\\(3,\\)"):
        check_right_padded([1, 2, 0])
