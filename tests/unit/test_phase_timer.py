"""shared.metrics phase timers: exclusive time per phase, labels per thread, unknown names refused."""
from __future__ import annotations

import threading

import pytest

from shared import metrics


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(metrics.time, "perf_counter", fake)
    return fake


def _sum(service: str, phase: str, mode: str) -> float:
    value = metrics.REGISTRY.get_sample_value("datamig_phase_seconds_sum",
                                              {"service": service, "phase": phase, "mode": mode})
    return value or 0.0


def _count(service: str, phase: str, mode: str) -> float:
    value = metrics.REGISTRY.get_sample_value("datamig_phase_seconds_count",
                                              {"service": service, "phase": phase, "mode": mode})
    return value or 0.0


def test_a_phase_observes_its_elapsed_time_under_the_thread_labels(clock):
    metrics.phase_labels("loader", "t_single")
    with metrics.phase("commit"):
        clock.now += 2.5
    assert _sum("loader", "commit", "t_single") == pytest.approx(2.5)
    assert _count("loader", "commit", "t_single") == 1


def test_nested_phases_are_exclusive_and_add_up_to_the_outer_time(clock):
    # Given a load of 1 s before and 0.5 s after a 3 s merge nested inside it
    metrics.phase_labels("loader", "t_nested")
    with metrics.phase("load"):
        clock.now += 1.0
        with metrics.phase("merge"):
            clock.now += 3.0
        clock.now += 0.5
    # Then load counts only its own 1.5 s, merge its 3 s: together the 4.5 s that passed
    assert _sum("loader", "load", "t_nested") == pytest.approx(1.5)
    assert _sum("loader", "merge", "t_nested") == pytest.approx(3.0)


def test_a_phase_is_observed_when_its_block_raises(clock):
    metrics.phase_labels("loader", "t_raise")
    with pytest.raises(RuntimeError):
        with metrics.phase("load"):
            clock.now += 0.25
            raise RuntimeError("boom")
    assert _sum("loader", "load", "t_raise") == pytest.approx(0.25)
    with metrics.phase("load"):  # the stack is clean again: no time leaks into a later phase
        clock.now += 0.5
    assert _sum("loader", "load", "t_raise") == pytest.approx(0.75)


def test_phased_decorator_and_phase_iter(clock):
    metrics.phase_labels("extractor", "t_iter")

    @metrics.phased("validate")
    def check() -> str:
        clock.now += 0.5
        return "ok"

    def produce():
        for n in range(3):
            clock.now += 1.0  # producing each item
            yield n

    assert check() == "ok"
    seen = []
    for item in metrics.phase_iter("extract", produce()):
        clock.now += 10.0  # the consumer's work is not extract time
        seen.append(item)
    assert seen == [0, 1, 2]
    assert _sum("extractor", "validate", "t_iter") == pytest.approx(0.5)
    assert _sum("extractor", "extract", "t_iter") == pytest.approx(3.0)
    assert _count("extractor", "extract", "t_iter") == 4  # three items and the exhausted call


def test_labels_belong_to_the_thread_that_set_them():
    metrics.phase_labels("loader", "t_main")
    seen = []

    def other() -> None:
        metrics.phase_labels("extractor", "t_other")
        with metrics.phase("transport"):
            pass
        seen.append(True)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    with metrics.phase("transport"):
        pass
    assert seen and _count("extractor", "transport", "t_other") == 1
    assert _count("loader", "transport", "t_main") == 1


def test_an_unknown_phase_is_refused():
    with pytest.raises(ValueError):
        with metrics.phase("lunch"):
            pass
