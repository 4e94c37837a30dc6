"""The detection evaluation's arithmetic (``assistant.evaluation.detection``) on made-up rankings:
which turns go ahead under a rule, how many of them are wrong, and the rule chosen from them."""

import numpy as np

from assistant.evaluation.detection import Ranked, Rule, choose, memory_use, score


def ranked() -> Ranked:
    # Four personal messages: two clear and right, one close and wrong, one less close and right;
    # two generic questions, both close calls.
    return Ranked(top=np.array([0.97, 0.95, 0.55, 0.6]), second=np.array([0.02, 0.04, 0.45, 0.4]),
                  right=np.array([True, True, False, True]),
                  generic_top=np.array([0.57, 0.52]), generic_second=np.array([0.43, 0.48]))


def test_a_raw_probability_floor_lets_close_calls_and_generic_questions_through():
    before = score(ranked(), Rule(0.5, 0.0))
    assert before["go_ahead"] == 1.0 and before["wrong_among_go_ahead"] == 0.25
    assert before["generic_guessed"] == 1.0 and before["generic_asked"] == 0.0


def test_the_chosen_rule_asks_on_close_calls_and_keeps_the_clear_ones():
    rule, grid = choose(ranked())
    after = score(ranked(), rule)
    assert after["go_ahead"] == 0.75 and after["wrong_among_go_ahead"] == 0.0 and after["generic_guessed"] == 0.0
    assert len(grid) > 1 and all("go_ahead" in s for s in grid)


def test_wrong_person_memory_use_counts_recalling_turns_that_were_wrong():
    assert memory_use(ranked(), Rule(0.5, 0.0), None)["wrong_person_memory_use"] == 0.0  # never before confirmation
    assert memory_use(ranked(), Rule(0.5, 0.0), 0.0)["wrong_person_memory_use"] == 0.25
    assert memory_use(ranked(), Rule(0.5, 0.0), 0.9)["wrong_person_memory_use"] == 0.0
