"""Upper bounds of rapidfuzz's scores from what two texts are made of, computed for a whole
batch of pairs at once: a scorer given a `score_cutoff` returns 0 below it, so a pair whose
bound is below the cutoff need not be scored at all, and gets the same 0.

Each scorer bounded here is an Indel ratio, 200 * LCS / (len(a) + len(b)), between the two
texts or strings made of them, and a longest common subsequence holds at most the characters
the two have in common, counted as multisets. Those are counted per bucket (the letters, the
digits and the space each have their own; other characters share the rest, which can only
count more in common), bit-sliced so that a pair takes a few 64-bit ANDs and popcounts:
`at_least[:, k]` has a bucket's bit when the text holds more than k of its characters, and
`excess` counts the characters beyond SLICES of one bucket.

- `ratio`: 200 * common / (len(a) + len(b)).
- `partial_ratio`: the best ratio of the shorter text (length m) against a window of the longer;
  a window of length w shares at most min(w, common) characters with it, and
  200 * min(w, common) / (m + w) is largest at w = common: 200 * common / (m + common).
- `token_set_ratio`: 100 when one text's words may all be the other's (or when their words
  cannot be read here). Else it is the best of the ratio of their sorted word sets joined by
  spaces, which hold no character the texts do not: 200 * common / (len(set a) + len(set b));
  and, when they share words, of those words joined (s characters, s <= common) against each
  word set (L = len(set) >= s + 2, as each text has a word of its own): 200 * s / (s + L).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .assign import stable_order

SLICES = 3
WORDS = 8  # words of a text listed one by one (most memos, labels and names have fewer)
_BUCKETS = 64
_OWN_BUCKET = "abcdefghijklmnopqrstuvwxyz0123456789 "
_SHARED_BUCKETS = _BUCKETS - len(_OWN_BUCKET)
_BUCKET_OF_ASCII = np.array(
    [
        _OWN_BUCKET.index(chr(c)) if chr(c) in _OWN_BUCKET else len(_OWN_BUCKET) + c % 27
        for c in range(128)
    ],
    dtype=np.int64,
)
# Word boundaries other than the plain space: a text holding one is split here as rapidfuzz
# may not split it, so its words are not read (its token scores are not bounded).
_IS_OTHER_WHITESPACE = np.array(
    [chr(c).isspace() and c != 32 for c in range(0x3001)] + [False], dtype=bool
)  # the last stands for every character past U+3000, none of which is whitespace
_WORD_HASH = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: its top 6 bits pick a word bit


@dataclass(slots=True)
class TextShapes:
    """Per text: its length, its characters bit-sliced per bucket, its words as a 64-bit mask
    (a bit per word, by hash) and the length of its word set joined by spaces (at most: -1
    when it is not told, with other whitespace or no word)."""

    length: np.ndarray  # int64
    at_least: np.ndarray  # uint64 [texts, SLICES]
    excess: np.ndarray  # int64
    words: np.ndarray  # uint64
    words_length: np.ndarray  # int64
    # Its first WORDS words, each as its bit and its length + 1 (0 past the last word), and
    # whether it has more.
    word_bits: np.ndarray  # uint8 [texts, WORDS]
    word_sizes: np.ndarray  # int32 [texts, WORDS]
    many_words: np.ndarray  # bool

    def take(self, positions: np.ndarray) -> TextShapes:
        return TextShapes(
            self.length[positions],
            self.at_least[positions],
            self.excess[positions],
            self.words[positions],
            self.words_length[positions],
            self.word_bits[positions],
            self.word_sizes[positions],
            self.many_words[positions],
        )


def text_shapes(texts: list[str]) -> TextShapes:
    """The shapes of these texts, each distinct text worked out once (labels repeat)."""
    distinct: dict[str, int] = {}
    positions = np.fromiter(
        (distinct.setdefault(text, len(distinct)) for text in texts),
        dtype=np.int64,
        count=len(texts),
    )
    return _distinct_shapes(list(distinct)).take(positions)


def _distinct_shapes(texts: list[str]) -> TextShapes:
    n = len(texts)
    length = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    # One code point per character, whatever the text holds (lone surrogates included).
    codes = np.frombuffer(
        "".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32
    ).astype(np.int64)
    owner = np.repeat(np.arange(n), length)
    bucket = np.where(
        codes < 128,
        _BUCKET_OF_ASCII[np.minimum(codes, 127)],
        len(_OWN_BUCKET) + codes % _SHARED_BUCKETS,
    )
    # Each text's count of each bucket, for the (text, bucket) cells that hold any: one radix
    # sort of the cells (a dense texts x buckets table costs more to fill than to read).
    cell = owner * _BUCKETS + bucket
    ordered = cell[stable_order(cell)]
    first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(cell) else cell
    cells, counts = ordered[first], np.diff(np.r_[first, len(cell)])
    cell_owner, cell_bit = cells // _BUCKETS, np.uint64(1) << (cells % _BUCKETS).astype(np.uint64)
    at_least = np.zeros((n, SLICES), dtype=np.uint64)
    for k in range(SLICES):
        held = np.flatnonzero(counts > k)
        if len(held):
            starts = np.flatnonzero(np.r_[True, np.diff(cell_owner[held]) != 0])
            at_least[cell_owner[held[starts]], k] = np.bitwise_or.reduceat(cell_bit[held], starts)
    excess = np.bincount(cell_owner, weights=np.maximum(counts - SLICES, 0), minlength=n)
    excess = excess.astype(np.int64)

    # Words: runs of characters other than the space, hashed by their characters.
    spaced = codes == 32
    starts = np.cumsum(length) - length
    first_of_text = np.zeros(len(codes), dtype=bool)
    first_of_text[starts[length > 0]] = True
    opens = ~spaced & (first_of_text | np.r_[True, spaced[:-1]])
    word = np.cumsum(opens) - 1  # the word each character is in (meaningless on spaces)
    in_word = np.flatnonzero(~spaced)
    word_of = word[in_word]
    word_start = np.flatnonzero(opens)
    word_owner = owner[word_start]
    words = np.zeros(n, dtype=np.uint64)
    set_length = np.zeros(n, dtype=np.int64)  # of the text's distinct words, spaces between
    word_bits = np.zeros((n, WORDS), dtype=np.uint8)
    word_sizes = np.zeros((n, WORDS), dtype=np.int32)
    many_words = np.zeros(n, dtype=bool)
    if len(word_start):
        place = (in_word - word_start[word_of]).astype(np.uint64)
        with np.errstate(over="ignore"):
            mixed = codes[in_word].astype(np.uint64) * (np.uint64(1000003) ** place)
            hashed = np.add.reduceat(mixed, np.flatnonzero(np.r_[True, np.diff(word_of) != 0]))
            bit = (hashed * _WORD_HASH) >> np.uint64(58)
        # Words come text by text: one OR over each text's words.
        texts_from = np.flatnonzero(np.r_[True, word_owner[1:] != word_owner[:-1]])
        words[word_owner[texts_from]] = np.bitwise_or.reduceat(np.uint64(1) << bit, texts_from)
        size = np.bincount(word_of)
        rank = np.arange(len(word_owner)) - np.repeat(
            texts_from, np.diff(np.r_[texts_from, len(word_owner)])
        )
        listed = rank < WORDS
        word_bits[word_owner[listed], rank[listed]] = bit[listed]
        word_sizes[word_owner[listed], rank[listed]] = size[listed] + 1
        many_words[word_owner[~listed]] = True
        # A word met again in its text counts once; two words of one hash count as one, the
        # shorter (a shorter word set only raises the bound).
        order = np.lexsort((size, hashed, word_owner))
        owner_of, hash_of = word_owner[order], hashed[order]
        first = np.r_[True, (owner_of[1:] != owner_of[:-1]) | (hash_of[1:] != hash_of[:-1])]
        distinct = np.bincount(owner_of[first], minlength=n)
        joined = np.bincount(owner_of[first], weights=size[order][first], minlength=n)
        set_length = joined.astype(np.int64) + distinct - 1
    other_whitespace = _IS_OTHER_WHITESPACE[np.minimum(codes, len(_IS_OTHER_WHITESPACE) - 1)]
    told = (np.bincount(owner[other_whitespace], minlength=n) == 0) & (set_length > 0)
    return TextShapes(
        length,
        at_least,
        excess,
        words,
        np.where(told, set_length, -1),
        word_bits,
        word_sizes,
        many_words,
    )


@dataclass(slots=True)
class Bounds:
    """Upper bounds of the scores of the pairs (a[i], b[j]), in rapidfuzz's percent."""

    common: np.ndarray  # characters the two can have in common
    length: tuple[np.ndarray, np.ndarray]
    words: tuple[np.ndarray, np.ndarray]
    words_length: tuple[np.ndarray, np.ndarray]
    sides: tuple[TextShapes, np.ndarray, TextShapes, np.ndarray]  # a, i, b, j

    def ratio(self) -> np.ndarray:
        return self._unless_empty(200 * self.common / np.maximum(sum(self.length), 1))

    def partial_ratio(self) -> np.ndarray:
        shorter = np.minimum(*self.length)
        return self._unless_empty(200 * self.common / np.maximum(shorter + self.common, 1))

    def token_set_ratio(self, among: np.ndarray | None = None) -> np.ndarray:
        """The bound of every pair; the finer one of texts that share words only `among`
        these pairs (a mask), where it may spare a score."""
        (wa, wb), (la, lb) = self.words, self.words_length
        shared = (wa & wb) != 0
        # A word whose bit the other text lacks is not among its words: each text then has a
        # word of its own, so the score is not the 100 of one word set within the other.
        own_words = ((wa & ~wb) != 0) & ((wb & ~wa) != 0)
        unbounded = (la < 0) | (lb < 0) | (shared & ~own_words)
        bound = 200 * self.common / np.maximum(la + lb, 1)
        # The shared words joined (s characters) against one text's word set (at least s + 2
        # long, as it has a word of its own): 200 * s / (s + L).
        mixed = np.flatnonzero(shared & ~unbounded & (True if among is None else among))
        if len(mixed):
            s = np.minimum(self._shared_length(mixed), self.common[mixed])
            shorter = np.minimum(la[mixed], lb[mixed])
            joined = 200 * s / np.maximum(s + np.maximum(shorter, s + 2), 1)
            bound[mixed] = np.maximum(bound[mixed], joined)
        return np.where(unbounded, 100.0, bound)

    def _shared_length(self, k: np.ndarray) -> np.ndarray:
        """At most the length of the words pairs k share, joined by spaces: the words of
        either text whose bit the other has, each with a space after it, less one."""
        a, i, b, j = self.sides
        wa, wb = self.words
        return np.maximum(np.minimum(_may_share(a, i[k], wb[k]), _may_share(b, j[k], wa[k])) - 1, 0)

    def _unless_empty(self, bound: np.ndarray) -> np.ndarray:
        # rapidfuzz scores two empty texts 100: no bound where either is empty.
        return np.where(np.minimum(*self.length) == 0, 100.0, bound)


def _may_share(shapes: TextShapes, at: np.ndarray, other_words: np.ndarray) -> np.ndarray:
    """Per text `at`, the length (each word + 1) of its words whose bit is in `other_words`
    (all of it, + 1, for a text of more than WORDS words)."""
    present = (other_words[:, None] >> shapes.word_bits[at].astype(np.uint64)) & np.uint64(1)
    listed = np.einsum("ij,ij->i", shapes.word_sizes[at], present.astype(np.int32))
    return np.where(shapes.many_words[at], shapes.length[at] + 1, listed)


def bounds(a: TextShapes, i: np.ndarray, b: TextShapes, j: np.ndarray) -> Bounds:
    common = np.minimum(a.excess[i], b.excess[j])
    for k in range(SLICES):
        common += np.bitwise_count(a.at_least[i, k] & b.at_least[j, k])
    return Bounds(
        common,
        (a.length[i], b.length[j]),
        (a.words[i], b.words[j]),
        (a.words_length[i], b.words_length[j]),
        (a, i, b, j),
    )


def reaches(bound: np.ndarray, cutoff: float) -> np.ndarray:
    """Where a score so bounded can reach the cutoff (with room for float rounding)."""
    return bound >= cutoff - 1e-6
