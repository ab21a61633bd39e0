"""Answer-option features: parsing MMLU-style options, and their cosines pooled from the real
encoder's token states."""

from __future__ import annotations

import numpy as np
import pytest

from ragrouter.features.answer_options import FEATURES, option_spans
from ragrouter.encoder import EncoderConfig
from ragrouter.features.query_features import FeatureConfig, extract_features

COLUMN = {name: i for i, name in enumerate(FEATURES)}
ALIKE = "How many legs does a dog have?\nA. the number 4\nB. the number four\nC. the number 4.0\nD. the number four exactly\nAnswer:"
UNLIKE = "How many legs does a dog have?\nA. Paris in the spring\nB. photosynthesis in leaves\nC. the French revolution\nD. a violin concerto\nAnswer:"
PLAIN = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did she sell?"


def _texts(prompt: str) -> tuple[str, list[str]]:
    (q_start, q_end), spans = option_spans(prompt)
    return prompt[q_start:q_end], [prompt[a:b] for a, b in spans]


def test_option_spans_give_the_question_and_each_option_lettered_in_order():
    assert _texts("Find the degree of Q(sqrt(2)) over Q.\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:") == ("Find the degree of Q(sqrt(2)) over Q.", ["0", "4", "2", "6"])
    assert _texts("Pick one.\nA) yes\nB) no") == ("Pick one.", ["yes", "no"])
    assert _texts("Which?\nA. x\nB. y\nD. z") == ("Which?", ["x", "y"])  # a skipped letter ends the options
    for no_options in (PLAIN, "Which?\nA. only one", "A. starts with an option\nB. and another", "Which?\nB. x\nC. y"):
        assert option_spans(no_options) is None, no_options


@pytest.fixture(scope="module")
def features():
    return extract_features([ALIKE, UNLIKE, PLAIN], FeatureConfig(EncoderConfig(max_tokens=128), token_states=True))


def test_alike_options_have_higher_cosines_than_unlike_ones_and_a_plain_prompt_gets_zeros(features):
    alike, unlike, plain = features.arrays["answer_options"]
    assert alike[COLUMN["has_options"]] == unlike[COLUMN["has_options"]] == 1.0
    assert alike[COLUMN["option_cosine_mean"]] > unlike[COLUMN["option_cosine_mean"]] + 0.1
    assert alike[COLUMN["option_cosine_min"]] > unlike[COLUMN["option_cosine_max"]]
    assert -1.0 <= unlike[COLUMN["option_cosine_min"]] <= unlike[COLUMN["option_cosine_max"]] <= 1.0
    assert alike[COLUMN["options_with_digits"]] == 0.5 and unlike[COLUMN["options_with_digits"]] == 0.0
    assert alike[COLUMN["log_question_chars"]] == pytest.approx(np.log1p(len("How many legs does a dog have?")))
    assert not plain.any()
    part = features.subset([2, 0])  # the features slice with the other arrays
    np.testing.assert_array_equal(part.arrays["answer_options"], features.arrays["answer_options"][[2, 0]])


def test_options_cut_off_by_truncation_keep_their_text_features_but_no_cosines():
    long_question = "Consider the following long passage about a dog and its legs. " * 10 + "How many legs?"
    prompt = f"{long_question}\nA. four\nB. three\nC. two\nD. one\nAnswer:"
    # read from the start, the options fall past the 16 tokens kept
    truncated, = extract_features([prompt], FeatureConfig(EncoderConfig(max_tokens=16, keep="head"), token_states=True)).arrays["answer_options"]
    full, = extract_features([prompt], FeatureConfig(EncoderConfig(max_tokens=256), token_states=True)).arrays["answer_options"]
    assert truncated[COLUMN["has_options"]] == full[COLUMN["has_options"]] == 1.0
    assert truncated[COLUMN["log_option_chars_mean"]] == full[COLUMN["log_option_chars_mean"]] > 0
    assert truncated[COLUMN["option_cosine_mean"]] == 0.0 and full[COLUMN["option_cosine_mean"]] > 0.2
