"""The sender's retry rules with a scripted sink (pure asyncio, no network). The same behaviours meet the
real OpenSearch in tests/integration/test_aggregator_opensearch.py (per-item 429) and
test_aggregator_pause.py (connection errors); a whole-request 400/413 cannot be provoked there."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from aggregator.accumulator import Accumulator, BulkItem, Ticket
from aggregator.deadletter import DeadLetterFile
from aggregator.metrics import Metrics
from aggregator.sender import Sender
from aggregator.sink import SinkError


class ScriptedSink:
    """Answers each bulk with the next scripted reaction; records the ids it was sent."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.sent: list[list[int]] = []

    async def bulk(self, body: bytes, docs: int) -> Any:
        lines = body.splitlines()
        ids = [int(orjson.loads(lines[i])["create"]["_id"]) for i in range(0, len(lines), 2)]
        self.sent.append(ids)
        reaction = self.script.pop(0) if self.script else "ok"
        if isinstance(reaction, SinkError):
            raise reaction
        if callable(reaction):
            return reaction(ids)
        return {"errors": False}

    async def close(self) -> None:
        return None


def items(n: int, ticket: Ticket) -> list[BulkItem]:
    return [
        BulkItem.of(orjson.dumps({"create": {"_index": "i", "_id": str(k)}}) + b"\n", b'{"k":%d}\n' % k, "i", ticket)
        for k in range(n)
    ]


async def run(sink: ScriptedSink, tmp_path: Path, n: int) -> tuple[Ticket, Metrics, DeadLetterFile]:
    metrics = Metrics()
    dlq = DeadLetterFile(tmp_path / "dlq.ndjson", 10**6, 1)
    done = asyncio.Event()
    ticket = Ticket(n, done.set)
    sender = Sender(
        sink,
        Accumulator(10**6, 1000, max_delay=0.05),
        concurrency=2,
        backoff=(0.001, 0.01),
        dead_letter=dlq,
        metrics=metrics,
        on_settled=lambda k: None,
    )
    sender.start()
    sender.submit(items(n, ticket))
    await asyncio.wait_for(done.wait(), 10)
    await sender.stop()
    return ticket, metrics, dlq


async def test_connection_errors_and_5xx_resend_the_whole_batch(tmp_path: Path) -> None:
    sink = ScriptedSink([SinkError("down", 0), SinkError("busy", 503), "ok"])
    ticket, metrics, _ = await run(sink, tmp_path, 10)
    assert sink.sent == [list(range(10))] * 3
    assert ticket.done and metrics.indexed._value.get() == 10
    assert metrics.retried.labels("connection")._value.get() == 10
    assert metrics.retried.labels("503")._value.get() == 10


async def test_item_errors_resend_only_failed_items_and_dead_letter_4xx(tmp_path: Path) -> None:
    def partial(ids: list[int]) -> dict[str, Any]:
        status = {2: 429, 5: 503, 7: 400}
        return {
            "errors": True,
            "items": [
                {"create": {"status": status.get(i, 201), "error": {"type": "x"} if i in status else None}} for i in ids
            ],
        }

    sink = ScriptedSink([partial, "ok"])
    ticket, metrics, dlq = await run(sink, tmp_path, 10)
    assert sink.sent == [list(range(10)), [2, 5]]
    assert ticket.done and ticket.dead_lettered == 1
    assert metrics.indexed._value.get() == 9 and metrics.dead_lettered._value.get() == 1
    record = orjson.loads(dlq.path.read_bytes())
    assert record["event"] == {"k": 7} and record["status"] == 400


async def test_whole_request_400_is_split_until_the_bad_event_is_alone(tmp_path: Path) -> None:
    def reject_7(ids: list[int]) -> dict[str, Any]:
        if 7 in ids:
            raise SinkError("malformed", 400)
        return {"errors": False}

    sink = ScriptedSink([reject_7] * 20)
    ticket, metrics, dlq = await run(sink, tmp_path, 10)
    assert ticket.done and ticket.dead_lettered == 1
    assert metrics.indexed._value.get() == 9
    assert orjson.loads(dlq.path.read_bytes())["event"] == {"k": 7}
    assert [7] in sink.sent


async def test_unexpected_failures_and_unknown_statuses_are_retried_not_dead_lettered() -> None:
    from types import SimpleNamespace

    import pytest
    from opensearchpy import TransportError

    from aggregator.auth import Redactor
    from aggregator.retry import Action, after_failure
    from aggregator.sink import OpenSearchSink

    async def weird(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("response could not be read for pw-secret-1")

    async def no_status(*args: Any, **kwargs: Any) -> Any:
        raise TransportError("N/A", "odd", None)

    for failure in (weird, no_status):
        client = SimpleNamespace(transport=SimpleNamespace(perform_request=failure))
        sink = OpenSearchSink(
            lambda url, c=client: c,
            ["http://n1:9200"],
            Redactor(["pw-secret-1"]),
        )
        with pytest.raises(SinkError) as err:
            await sink.bulk(b"{}\n{}\n", 1)
        assert err.value.status == 0 and after_failure(err.value.status, 1) is Action.RETRY
        assert "pw-secret-1" not in str(err.value)
        assert sink.pool.healthy == ["http://n1:9200"]  # it answered: not taken out
