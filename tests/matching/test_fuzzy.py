"""The bounds that let a batch skip rapidfuzz's scorers are never below the score, and the levels
of texts and names are those of the plain scores."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz

from matching.core import compare, fuzzy

# Mostly what cleaned memos, labels and names hold, with what they could hold besides:
# capitals, accents, punctuation, other whitespace, a lone surrogate, characters past the BMP.
characters = st.sampled_from(list("abcmrs 0129  é-ÉA\t\u00a0\u2003\ud800\U0001f600x"))
texts = st.text(characters, max_size=40) | st.sampled_from(["m c", "m c payment bgc", "", " "])
words = st.text(st.sampled_from(list("abcmrs0129é")), min_size=1, max_size=8)


@st.composite
def alike(draw) -> tuple[str, str]:
    """Two texts, the second often made from the first (cut, a word more, a few characters
    changed), so that every level is met, not only "different"."""
    first = draw(texts)
    how = draw(st.sampled_from(["cut", "tail", "word", "edit", "apart"]))
    if how == "cut":
        second = first[: draw(st.integers(0, len(first)))]
    elif how == "tail":  # the end of one with a word more, as a bank label cuts a memo
        second = f"{first[draw(st.integers(0, len(first))) :]} {draw(words)}"
    elif how == "word":
        word = draw(words)
        second = draw(st.sampled_from([f"{first} {word}", f"{word} {first}"]))
    elif how == "edit":
        second = list(first)
        for _ in range(draw(st.integers(1, 3))):
            if second:
                second[draw(st.integers(0, len(second) - 1))] = draw(characters)
        second = "".join(second)
    else:
        second = draw(texts)
    return (first, second) if draw(st.booleans()) else (second, first)


SCORERS = {
    "ratio": fuzz.ratio,
    "partial_ratio": fuzz.partial_ratio,
    "token_set_ratio": fuzz.token_set_ratio,
}


@settings(max_examples=400, deadline=None)
@given(st.lists(alike(), min_size=1, max_size=20))
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


def _objects(values: list[str]) -> np.ndarray:
    return np.array([*values, None], dtype=object)[:-1]


def _text_level(memo: str, label: str) -> str:
    """A memo against a label by the plain scores, as matching.md defines the text levels."""
    if not memo or not label:
        return "missing"
    ratio, partial = fuzz.ratio(memo, label), fuzz.partial_ratio(memo, label)
    best = max(ratio, fuzz.token_set_ratio(memo, label))
    if ratio == 100:
        return "same"
    if min(len(memo), len(label)) < compare.SHORT_TEXT:
        return "similar" if memo.startswith(label) or label.startswith(memo) else "different"
    if partial == 100:
        return "contained"
    if best >= 85:
        return "close"
    return "similar" if best >= 70 or partial >= 80 else "different"


def _name_level(names: list[str], other: str) -> str:
    best = max(
        [max(fuzz.token_set_ratio(n, other), fuzz.ratio(n, other)) for n in names if n and other],
        default=0,
    )
    thresholds = [(95, "name_same"), (85, "name_close"), (compare.NAME_SIMILAR, "name_similar")]
    return next((level for score, level in thresholds if best >= score), "different")


@settings(max_examples=300, deadline=None)
@given(st.lists(alike(), min_size=1, max_size=20))
@example([("m c money bgc", "m c"), ("m corvinus donation", "m corvinus dona bgc")])
@example([("ms92bsa0a2", "92bsa0a2 0a21b"), ("smsrrr0 a", "rr0 a b")])
def test_text_levels_are_those_of_the_plain_scores(pairs):
    """Scores the bounds spare, and the cutoffs given to rapidfuzz, change no level."""
    memos, labels = [a for a, _ in pairs], [b for _, b in pairs]
    index = np.arange(len(pairs))
    ours = SimpleNamespace(text=_objects(memos), text_shapes=fuzzy.text_shapes(memos))
    theirs = SimpleNamespace(text=_objects(labels), text_shapes=fuzzy.text_shapes(labels))
    shortest = np.array([min(len(a), len(b)) for a, b in pairs])
    levels = compare._text_levels(index, index, ours, theirs, shortest)
    names = compare.LEVELS["text"]
    assert [names[k] for k in levels] == [_text_level(a, b) for a, b in pairs]


@settings(max_examples=300, deadline=None)
# A record's names are never empty (an empty one is not listed).
@given(
    st.lists(
        st.tuples(alike(), st.lists(texts.filter(bool), max_size=2)).map(
            lambda drawn: ([n for n in (drawn[0][0], *drawn[1]) if n] or ["x"], drawn[0][1])
        ),
        max_size=20,
    )
)
@example([(["algolia", "algolia sas"], "algolia sas"), (["m c"], "m c donation")])
@example([(["abcdefgh"], "abcdxxgh"), (["abcdefgh", "zz"], "abcdefgx")])
def test_name_levels_are_those_of_the_plain_scores(pairs):
    others = [other for _, other in pairs]
    slots = compare._name_slots([names for names, _ in pairs])
    index = np.arange(len(pairs))
    reach = [
        fuzzy.bounds(fuzzy.text_shapes(slot.tolist()), index, fuzzy.text_shapes(others), index)
        for slot in slots
    ]
    names = compare.LEVELS["counterparty"]
    expected = [_name_level(own, other) for own, other in pairs]
    for bounded in (reach, None):
        levels = compare._name_levels(slots, _objects(others), bounded)
        assert [names[k] for k in levels] == expected
