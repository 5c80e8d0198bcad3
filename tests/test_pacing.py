"""The pacer: even spacing, and how a 429 slows it, in simulated time."""

from __future__ import annotations

import bisect
import itertools
import random

import pytest

from capframe._pacing import Pacer

RPM = 1000
INTERVAL = 60 * 1.01 / RPM


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def paced(clock: Clock) -> Pacer:
    return Pacer(RPM, clock=clock)


def send(pacer: Pacer, clock: Clock) -> float:
    """Reserve a slot and move the clock to it, as a waiting request would."""
    clock.now = pacer.reserve()
    return clock.now


def test_slots_are_evenly_spaced_without_a_burst_after_idling() -> None:
    clock = Clock()
    pacer = paced(clock)
    first = [send(pacer, clock) for _ in range(10)]
    assert first[-1] - first[0] == pytest.approx(9 * INTERVAL)
    clock.now += 30  # idle: the unused budget is not spent later as a burst
    later = [send(pacer, clock) for _ in range(3)]
    assert later[1] - later[0] == pytest.approx(INTERVAL)


def test_a_429_pauses_then_halves_the_pace_and_it_recovers_over_a_minute() -> None:
    clock = Clock()
    pacer = paced(clock)
    send(pacer, clock)
    pacer.pause(2.0)
    assert pacer.share() == 0.5
    resumed = send(pacer, clock)
    assert resumed == pytest.approx(2.0)
    assert send(pacer, clock) - resumed == pytest.approx(2 * INTERVAL)
    clock.now = 2.0 + 30
    assert pacer.share() == pytest.approx(0.75)
    assert pacer.rate() == pytest.approx(0.75 / INTERVAL)
    clock.now = 2.0 + 60
    assert pacer.share() == 1.0


def test_the_429s_of_one_burst_slow_the_pace_once() -> None:
    clock = Clock()
    pacer = paced(clock)
    for _ in range(8):  # every request in flight answered 429 at about the same time
        pacer.pause(1.0)
        clock.now += 0.01
    assert pacer.share() == 0.5
    clock.now = 1.1  # the pause is over: a 429 now is a second signal
    for _ in range(8):  # without Retry-After, as one burst
        pacer.pause(None)
    assert pacer.share() == pytest.approx(0.25, abs=0.001)
    clock.now += 0.5
    pacer.pause(None)
    assert pacer.share() == pytest.approx(0.25, abs=0.001)
    clock.now += 1.0  # a second later: a third
    recovering = pacer.share()
    pacer.pause(None)
    assert pacer.share() == pytest.approx(recovering / 2)


def test_never_over_the_budget_in_any_60_s_window() -> None:
    clock = Clock()
    pacer = paced(clock)
    rng = random.Random(7)
    times = []
    for _ in range(4000):
        times.append(send(pacer, clock))
        if rng.random() < 0.002:
            pacer.pause(rng.choice([None, 0.5, 3.0]))
        clock.now += rng.choice([0.0, 0.0, 0.01, 0.5])  # a busy loop, or an idle moment
    most = max(bisect.bisect_left(times, t + 60.0) - i for i, t in enumerate(times))
    assert most <= RPM
    assert min(b - a for a, b in itertools.pairwise(times)) >= INTERVAL - 1e-9


def test_unpaced_has_no_rate_but_still_pauses_for_a_429() -> None:
    clock = Clock()
    pacer = Pacer(None, clock=clock)
    assert pacer.rate() is None
    assert send(pacer, clock) == send(pacer, clock) == 0.0
    pacer.pause(3.0)
    assert send(pacer, clock) == 3.0
