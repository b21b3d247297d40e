"""The bounds that let a batch skip rapidfuzz's costlier scorers are never below the score."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz

from matching.core import fuzzy

# Mostly what cleaned memos, labels and names hold, with what they could hold besides:
# capitals, accents, punctuation, other whitespace, a lone surrogate, characters past the BMP.
characters = st.sampled_from(list("abcmrs 0129  é-ÉA\t\u00a0\u2003\ud800\U0001f600x"))
texts = st.text(characters, max_size=40) | st.sampled_from(["m c", "m c payment bgc", "", " "])
SCORERS = {
    "ratio": fuzz.ratio,
    "partial_ratio": fuzz.partial_ratio,
    "token_set_ratio": fuzz.token_set_ratio,
}


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(texts, texts), min_size=1, max_size=20))
@example([("m c donation bg", "m c"), ("a b a", "b a"), ("ab  cd", "cd ab"), ("x", "x")])
@example([("abc\tdef", "def abc"), ("abcd abcd", "abcd"), ("aaaaa b", "aaaa"), ("", "a")])
@example([("m c money bgc", "j m money bgc"), ("a m chq", "a a h chq"), ("b a", "a b c")])
@example([("a b c d e f g h i j", "j k"), ("a b c d e f g h i j", "a b c d e f g h i z")])
def test_a_bound_is_never_below_the_score(pairs):
    left, right = [a for a, _ in pairs], [b for _, b in pairs]
    index = np.arange(len(pairs))
    bounds = fuzzy.bounds(fuzzy.text_shapes(left), index, fuzzy.text_shapes(right), index)
    for name, scorer in SCORERS.items():
        bound = getattr(bounds, name)()
        for k, (a, b) in enumerate(pairs):
            score = scorer(a, b)
            assert fuzzy.reaches(bound[k], score), (name, a, b, score, bound[k])


def test_the_bounds_tell_apart_texts_that_share_nothing():
    shapes = fuzzy.text_shapes(["m c payment bgc", "zzz 777", "bgc payment m c"])
    apart = fuzzy.bounds(shapes, np.array([0]), shapes, np.array([1]))
    alike = fuzzy.bounds(shapes, np.array([0]), shapes, np.array([2]))
    assert apart.partial_ratio()[0] < 80 and apart.token_set_ratio()[0] < 70
    assert alike.token_set_ratio()[0] == 100  # one's words are all the other's


def test_texts_that_share_a_word_but_each_have_their_own_are_bounded_too():
    shapes = fuzzy.text_shapes(["bgc alpha", "bgc zqxwv", "zqxwv bgc"])
    apart = fuzzy.bounds(shapes, np.array([0]), shapes, np.array([1]))
    within = fuzzy.bounds(shapes, np.array([1]), shapes, np.array([2]))
    assert fuzz.token_set_ratio("bgc alpha", "bgc zqxwv") <= apart.token_set_ratio()[0] < 70
    assert within.token_set_ratio()[0] == 100


def test_words_are_not_told_across_other_whitespace_or_in_empty_texts():
    shapes = fuzzy.text_shapes(["a\tb", "", "   ", "a b", "b a b"])
    assert shapes.words_length.tolist()[:3] == [-1, -1, -1]
    assert shapes.words_length[3:].tolist() == [3, 3]  # "b a b" is the set "a b"
