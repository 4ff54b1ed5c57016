"""What a `_bulk` answer means for its events: the one retry policy of the sink (pure logic, no I/O).

Two questions, two functions:

* `after_failure(status, docs)`: the request failed as a whole (no per-item answer). No node answered
  (status 0: the sink has already tried every healthy node, see hosts.py), 429 and 5xx: back off and
  resend; 400/413 (this body can never succeed): split the batch in halves until the bad event is
  alone, then dead-letter it. Any other 4xx (401/403/404: credentials, permissions, a proxy) is
  something an operator fixes without restarting us: the events are kept and resent after a backoff.
* `sort_items(items, response)`: the request was answered; each item is delivered (2xx), already
  there (409, delivered: `create` with the event id made the resend harmless), to resend (429
  es_rejected_execution, 5xx: only those items, after a backoff), or dead (any other 4xx: a mapping
  conflict or a bad document will fail the same way again).

Nothing here sleeps or counts: the sender acts on the decisions, the metrics count them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from aggregator.accumulator import BulkItem

# Only what sort_items() reads: keeps responses for 5 MiB requests small and cheap to parse.
FILTER_PATH = "errors,items.*.status,items.*.error"


class Action(enum.Enum):
    """What to do with a batch whose request failed as a whole."""

    RETRY = "retry"  # resend the same batch after a backoff
    SPLIT = "split"  # resend each half separately
    DEAD_LETTER = "dead_letter"  # a single event that can never be indexed


def retryable_item(status: int) -> bool:
    """429 (too many requests) and every 5xx are worth resending; other 4xx fail the same way again."""
    return status == 429 or status >= 500


def after_failure(status: int, docs: int) -> Action:
    """The decision for a request that failed as a whole with HTTP `status` (0: no answer)."""
    if status in (400, 413):
        return Action.SPLIT if docs > 1 else Action.DEAD_LETTER
    return Action.RETRY


@dataclass
class Outcome:
    """A bulk response sorted per item: settled (indexed or already there), to resend, dead."""

    delivered: list[BulkItem] = field(default_factory=list)
    conflicts: int = 0  # of delivered: 409, the id was already indexed
    retry: list[BulkItem] = field(default_factory=list)
    retry_statuses: dict[int, int] = field(default_factory=dict)
    dead: list[tuple[BulkItem, int, Any]] = field(default_factory=list)


def sort_items(items: list[BulkItem], response: Any) -> Outcome:
    """Match the response items (same order as the request) to ours and decide each one's fate.

    A response that does not line up with the request (which OpenSearch never sends) resends all.
    """
    out = Outcome()
    if isinstance(response, dict) and response.get("errors") is False:
        out.delivered = items
        return out
    results = response.get("items") if isinstance(response, dict) else None
    if not isinstance(results, list) or len(results) != len(items):
        out.retry = items
        out.retry_statuses[0] = len(items)
        return out
    for item, result in zip(items, results, strict=True):
        body = next(iter(result.values()), None) if isinstance(result, dict) else None
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(status, int):
            out.retry.append(item)
            out.retry_statuses[0] = out.retry_statuses.get(0, 0) + 1
        elif 200 <= status < 300:
            out.delivered.append(item)
        elif status == 409:
            out.delivered.append(item)
            out.conflicts += 1
        elif retryable_item(status):
            out.retry.append(item)
            out.retry_statuses[status] = out.retry_statuses.get(status, 0) + 1
        else:
            assert isinstance(body, dict)
            out.dead.append((item, status, body.get("error")))
    return out


def split(items: list[BulkItem]) -> list[list[BulkItem]]:
    """The halves of a batch refused as a whole (Action.SPLIT)."""
    half = len(items) // 2
    return [items[:half], items[half:]]
