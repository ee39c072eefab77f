import numpy as np

from engine.data.text import PAD, UNKNOWN, build_vocabulary, encode, tokenize


def test_tokens_are_lowercase_words_and_digits():
    assert tokenize("Refund NOT received, order #123!") == ["refund", "not", "received", "order", "123"]


def test_vocabulary_is_by_frequency_then_alphabetical_and_capped():
    texts = ["b a", "a c", "a b", "d"]
    assert build_vocabulary(texts, vocab_size=4) == ["a", "b"]  # ids 2 and 3


def test_encode_pads_truncates_and_marks_unknown_tokens():
    ids = encode(["a b zzz", "b a b a b"], ["a", "b"], max_length=4)
    assert ids.dtype == np.int64
    assert ids.tolist() == [[2, 3, UNKNOWN, PAD], [3, 2, 3, 2]]
