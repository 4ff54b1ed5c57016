"""Endpoint selection, pure: names expanded to their addresses, the failover rotation, the resolver's memory."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logship.lumberjack.endpoints import Endpoint, Resolver, Rotation, expand, is_address


def test_a_name_stands_for_every_address_it_resolves_to_in_config_order() -> None:
    hosts = [("agg-headless", 5044), ("10.0.0.9", 5044), ("other", 6000)]
    answers = {"agg-headless": ["10.0.0.1", "10.0.0.2"], "other": ["10.0.0.1"]}
    assert expand(hosts, answers) == [
        Endpoint("agg-headless", "10.0.0.1", 5044),
        Endpoint("agg-headless", "10.0.0.2", 5044),
        Endpoint("10.0.0.9", "10.0.0.9", 5044),
        Endpoint("other", "10.0.0.1", 6000),  # same address, other port: another endpoint
    ]


def test_a_name_without_answer_stays_itself_and_a_duplicate_address_is_one_endpoint() -> None:
    hosts = [("a", 5044), ("b", 5044), ("unresolved", 5044)]
    answers = {"a": ["10.0.0.1"], "b": ["10.0.0.1", "10.0.0.2"]}
    assert expand(hosts, answers) == [
        Endpoint("a", "10.0.0.1", 5044),
        Endpoint("b", "10.0.0.2", 5044),
        Endpoint("unresolved", "unresolved", 5044),
    ]


def test_endpoint_text_names_the_host_and_the_address() -> None:
    assert str(Endpoint("agg", "10.0.0.1", 5044)) == "agg (10.0.0.1):5044"
    assert str(Endpoint("::1", "::1", 5044)) == "[::1]:5044"
    assert is_address("127.0.0.2") and is_address("::1") and not is_address("aggregator.logging")


def test_rotation_starts_anywhere_then_moves_to_the_next_endpoint_at_each_reconnect() -> None:
    eps = expand([("agg", 5044)], {"agg": ["10.0.0.1", "10.0.0.2", "10.0.0.3"]})
    rotation = Rotation(random.Random(1))
    first = rotation.pick(eps)
    i = eps.index(first)
    assert [rotation.pick(eps) for _ in range(4)] == [eps[(i + k) % 3] for k in range(1, 5)]


def test_rotation_follows_a_changed_answer() -> None:
    rotation = Rotation(random.Random(0))
    old = expand([("agg", 5044)], {"agg": ["10.0.0.1"]})
    assert rotation.pick(old) == old[0]
    new = expand([("agg", 5044)], {"agg": ["10.0.0.1", "10.0.0.4"]})
    assert rotation.pick(new) == new[1]  # after the last one used, the newcomer
    gone = expand([("agg", 5044)], {"agg": ["10.0.0.5"]})
    assert rotation.pick(gone) == gone[0]  # the last one used is gone: somewhere in the new answer
    with pytest.raises(ValueError):
        rotation.pick([])


@given(st.lists(st.integers(1, 6), min_size=1, max_size=6), st.integers(0, 2**32))
def test_rotation_visits_every_endpoint_once_per_round(counts: list[int], seed: int) -> None:
    hosts = [(f"h{i}", 5044) for i in range(len(counts))]
    answers = {f"h{i}": [f"10.{i}.0.{j}" for j in range(n)] for i, n in enumerate(counts)}
    eps = expand(hosts, answers)
    rotation = Rotation(random.Random(seed))
    assert sorted(map(str, (rotation.pick(eps) for _ in eps))) == sorted(map(str, eps))


async def test_resolver_keeps_the_last_good_answer_when_a_lookup_fails() -> None:
    answers: dict[str, list[str] | OSError] = {"agg": ["127.0.0.2", "127.0.0.3"]}
    looked_up: list[str] = []

    async def lookup(host: str, port: int) -> list[str]:
        looked_up.append(host)
        answer = answers[host]
        if isinstance(answer, OSError):
            raise answer
        return answer

    resolver = Resolver([("agg", 5044), ("127.0.0.9", 5044)], lookup)
    first = await resolver.endpoints()
    assert [e.address for e in first] == ["127.0.0.2", "127.0.0.3", "127.0.0.9"]
    answers["agg"] = OSError("temporary failure in name resolution")
    assert await resolver.endpoints() == first
    answers["agg"] = ["127.0.0.3", "127.0.0.4"]
    assert [e.address for e in await resolver.endpoints()] == ["127.0.0.3", "127.0.0.4", "127.0.0.9"]
    assert looked_up == ["agg", "agg", "agg"]  # an address is never looked up
