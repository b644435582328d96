"""The INT8 frontier's walk: islands in order of dB regained per millisecond lost, as measured.

The walk takes its measurements as functions (a plan's output PSNR, plans'
latencies side by side); here they are given as tables, so the rule itself is
what is specified. `sr-bench int8-report --frontier` runs it on real graphs
(tests/cli/test_int8_cli.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from sr_export.bench.int8_frontier import Island, candidate_islands, greedy_frontier, island_group
from sr_export.bench.pareto import non_dominated

BASE_MS = 100.0


def _measured(gains: dict[str, float], costs: dict[str, float]):
    """score and time_plans for islands whose effects add up: a plan is the names of its islands."""
    def score(plan: tuple[str, ...]) -> float:
        return 30.0 + sum(gains[name] for name in plan)

    def time_plans(plans: Sequence[tuple[str, ...]]) -> list[float]:
        return [BASE_MS + sum(costs[name] for name in plan) for plan in plans]

    return score, time_plans


def test_each_step_adds_the_island_with_the_most_db_per_ms_and_stops_when_nothing_helps() -> None:
    islands = [Island("big", ("big",)), Island("cheap", ("cheap",)), Island("useless", ("useless",))]
    score, time_plans = _measured({"big": 1.0, "cheap": 0.5, "useless": 0.0},
                                  {"big": 10.0, "cheap": 1.0, "useless": 0.0})
    walk = greedy_frontier(islands, score=score, time_plans=time_plans, steps=5)
    assert [step.label for step in walk] == ["all-integer", "cheap", "big"]
    assert walk[0].keep_float == () and walk[-1].keep_float == ("cheap", "big")
    assert walk[1].gain_db == 0.5 and walk[1].cost_ms == 1.0
    assert walk[2].latency_ms == BASE_MS + 11.0


def test_a_free_island_is_charged_one_percent_so_a_big_gain_still_beats_a_tiny_free_one() -> None:
    islands = [Island("free", ("free",)), Island("worth it", ("worth it",))]
    score, time_plans = _measured({"free": 0.01, "worth it": 0.9}, {"free": -2.0, "worth it": 0.5})
    walk = greedy_frontier(islands, score=score, time_plans=time_plans, steps=1)
    # free: 0.01 dB / 1 ms (the floor); worth it: 0.9 dB / 1 ms (also the floor, 0.5 < 1% of 100 ms).
    assert [step.label for step in walk] == ["all-integer", "worth it"]
    assert walk[1].cost_ms == BASE_MS * 0.01


def test_the_walk_is_at_most_the_steps_asked_for() -> None:
    islands = [Island(name, (name,)) for name in "abcd"]
    score, time_plans = _measured(dict.fromkeys("abcd", 0.1), dict.fromkeys("abcd", 1.0))
    assert len(greedy_frontier(islands, score=score, time_plans=time_plans, steps=2)) == 3


def test_sr_layers_become_one_island_per_group_then_one_per_sensitive_tensor() -> None:
    reasons = {"/head/Conv": "first conv (sees raw pixels)", "/b1/c1/Conv": "reads the shallow features",
               "/Add": "global residual add", "/tail/Conv": "last conv (Conv)",
               "/shuffle": "upsampler / output (DepthToSpace)"}
    islands = candidate_islands(reasons, ["/b2/Concat_output_0"])
    assert [(i.label, i.names) for i in islands] == [
        ("head: first conv and its readers", ("/head/Conv", "/b1/c1/Conv")),
        ("global residual add", ("/Add",)),
        ("tail: last conv and upsampler", ("/tail/Conv", "/shuffle")),
        ("tensor /b2/Concat_output_0", ("/b2/Concat_output_0",)),
    ]
    assert island_group("per-channel statistic (Sigmoid)") == "per-channel statistics"


def test_the_front_keeps_points_nothing_beats_on_both_latency_and_drop() -> None:
    points = [(100.0, 0.5), (120.0, 0.3), (130.0, 0.4), (120.0, 0.3), (90.0, 0.9)]
    assert non_dominated(points) == [0, 1, 3, 4]
