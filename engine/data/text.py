"""Turning text into token ids, the same way for every framework and for inference.

Tokens are lowercase runs of letters and digits. The vocabulary keeps the most frequent
tokens of the training texts (ties broken alphabetically, so it is deterministic); id 0 is
padding and id 1 stands for any token outside the vocabulary. A text becomes its first
`max_length` token ids, padded with 0. The vocabulary travels with the model (export
metadata), so an inference engine can encode texts exactly like this.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

PAD = 0
UNKNOWN = 1
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def build_vocabulary(texts: Iterable[str], vocab_size: int) -> list[str]:
    """The kept tokens in id order, starting at id 2 (0 and 1 are padding and unknown)."""
    counts = Counter(token for text in texts for token in tokenize(text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [token for token, _ in ranked[: max(0, vocab_size - 2)]]


def encode(texts: Iterable[str], vocabulary: list[str], max_length: int) -> np.ndarray:
    """int64 [n, max_length] token ids."""
    index = {token: i + 2 for i, token in enumerate(vocabulary)}
    rows = []
    for text in texts:
        ids = [index.get(token, UNKNOWN) for token in tokenize(text)][:max_length]
        rows.append(ids + [PAD] * (max_length - len(ids)))
    return np.asarray(rows, dtype=np.int64).reshape(-1, max_length)
