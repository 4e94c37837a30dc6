"""The online budget threshold: it keeps the cloud share at the budget on streams of any mix,
from the first turns, stays steady through bursts, and lives in the store (restart, deletion)."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.routing.budget import WINDOW, Calibration, online_threshold
from assistant.routing.difficulty import DifficultyModel
from assistant.memory.memory import Memory
from assistant.store.turn_log import TurnLog
from assistant.routing.router import Router
from assistant.settings import load_settings
from assistant.store.store import GenerationStats, Store

PRIOR = np.linspace(0.0, 1.0, 1001)  # a shipped calibration whose scores are spread evenly


def stream(hard_share: float, n: int, seed: int) -> np.ndarray:
    """Scores of a stream whose hard part (scores above 0.5 on the prior) is ``hard_share`` of it."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < hard_share
    return np.where(hard, rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 0.5, n))


def routed(scores, budget: float) -> np.ndarray:
    calibration = Calibration(PRIOR, budget)
    return np.array([calibration.route(s)[0] for s in scores])


def test_with_no_history_it_is_the_shipped_threshold():
    for budget in (0.1, 0.3, 0.6):
        assert online_threshold(PRIOR, budget, [], []) == pytest.approx(np.quantile(PRIOR, 1 - budget), abs=0.01)


@pytest.mark.parametrize("hard_share", [0.05, 0.2, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("budget", [0.1, 0.3, 0.5])
def test_the_cloud_share_tracks_the_budget_whatever_the_mix(hard_share, budget):
    sent = routed(stream(hard_share, 480, seed=int(hard_share * 100 + budget * 10)), budget)
    assert abs(sent.mean() - budget) <= 0.05
    assert abs(sent[:100].mean() - budget) <= 0.1  # from the first turns, not after a warm-up


def test_the_hardest_turns_are_the_ones_sent():
    scores = stream(0.5, 480, seed=3)
    sent = routed(scores, 0.3)
    assert scores[sent].min() > np.quantile(scores, 0.5)  # never a turn from the easy half


def test_a_burst_of_hard_turns_neither_opens_nor_shuts_the_cloud():
    rng = np.random.default_rng(4)
    before, burst, after = stream(0.3, 200, 5), rng.uniform(0.9, 1.0, 40), stream(0.3, 200, 6)
    calibration = Calibration(PRIOR, 0.3)
    decisions, thresholds = [], []
    for score in np.r_[before, burst, after]:
        sent, threshold = calibration.route(score)
        decisions.append(sent)
        thresholds.append(threshold)
    decisions, thresholds = np.array(decisions), np.array(thresholds)
    assert np.abs(np.diff(thresholds[50:])).max() < 0.05   # one turn never moves it far
    assert decisions[200:240].mean() > 0.5                 # the burst is the hardest traffic yet: most of it goes
    assert 0 < decisions[240:300].mean() < 0.3             # then it is paid back, the cloud still open to the hardest
    assert abs(decisions[300:].mean() - 0.3) <= 0.1        # and the share returns to the budget
    assert abs(decisions.mean() - 0.3) <= 0.05


def test_no_budget_sends_nothing_and_a_full_budget_everything():
    assert not routed(stream(0.5, 100, 7), 0.0).any()
    assert routed(stream(0.5, 100, 7), 1.0).all()


def test_only_the_last_window_of_turns_counts():
    old, recent = np.full(5000, 0.99), stream(0.5, WINDOW, 8)
    sent = np.zeros(5000 + WINDOW, dtype=bool)
    assert online_threshold(PRIOR, 0.3, np.r_[old, recent], sent) == online_threshold(PRIOR, 0.3, recent, sent[-WINDOW:])


def add_scored_turns(store: Store, person, scores, budget_threshold: float) -> None:
    log = TurnLog(store)
    for score in scores:
        session = store.new_session(person.id)
        exchange_id = log.begin_exchange(session.id, person.id, "a question", [])
        target = "cloud" if score >= budget_threshold else "local"
        log.record(exchange_id, target, "test", float(score))
        log.complete_exchange(exchange_id, "an answer", GenerationStats(target, "test", 0.0, 1, 0.0))


def test_the_router_keeps_its_threshold_in_the_store_across_restarts_and_deletions(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data", cloud_budget=0.3)
    shipped = DifficultyModel.load(settings.router_path).threshold(0.3)
    store = Store(settings.database_path)
    router = Router(settings, store, Memory(settings, store).parts().index)
    assert router.threshold() == (pytest.approx(shipped, abs=0.01), 0)
    ana, ben = store.add_profile("Ana"), store.add_profile("Ben")
    add_scored_turns(store, ana, np.full(30, 0.2), shipped)   # easy turns: the bar comes down
    add_scored_turns(store, ben, np.full(30, 0.99), shipped)  # hard ones, all sent: over budget
    moved, turns = router.threshold()
    assert turns == 60 and moved != pytest.approx(shipped, abs=0.01)
    store.close()

    store = Store(settings.database_path)  # a restart reads the same history back
    memory = Memory(settings, store)
    router = Router(settings, store, memory.parts().index)
    assert router.threshold() == (moved, 60)
    memory.delete_profile("Ben")          # Ben's turns leave the calibration with him
    without_ben, turns = router.threshold()
    assert turns == 30 and without_ben == online_threshold(router.model.quantiles, 0.3, np.full(30, 0.2),
                                                           np.full(30, False))
    store.close()
