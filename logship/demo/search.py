"""What reached OpenSearch: documents per index, samples, all documents of a run (plain HTTP/JSON)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any


class SearchError(RuntimeError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def request(url: str, method: str = "GET", body: Any = None, timeout: float = 30.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise SearchError(f"{method} {url}: {exc.code} {exc.read()[:300]!r}", exc.code) from None


def path_filter(root: str) -> dict[str, Any]:
    """Documents whose source file lies under `root`: one run of the generator, whatever else the node holds."""
    return {"prefix": {"log.file.path": root.rstrip("/") + "/"}}


def refresh(url: str, pattern: str) -> None:
    request(f"{url}/{pattern}/_refresh?ignore_unavailable=true&allow_no_indices=true", "POST")


def counts_per_index(url: str, pattern: str, query: dict[str, Any] | None = None) -> dict[str, int]:
    body = {
        "size": 0,
        "track_total_hits": True,
        "query": query or {"match_all": {}},
        "aggs": {"per_index": {"terms": {"field": "_index", "size": 500}}},
    }
    try:
        res = request(f"{url}/{pattern}/_search?ignore_unavailable=true&allow_no_indices=true", "POST", body)
    except SearchError as exc:
        if exc.status in (404, 503):  # no index yet, or its shards are still starting
            return {}
        raise
    buckets = res.get("aggregations", {}).get("per_index", {}).get("buckets", [])
    return {b["key"]: int(b["doc_count"]) for b in sorted(buckets, key=lambda b: b["key"])}


def sample(url: str, pattern: str, query: dict[str, Any] | None = None, **must: Any) -> dict[str, Any] | None:
    """The newest document matching `query` (and term filters `must`), with `_index` and `_id`."""
    filters: list[dict[str, Any]] = [query] if query else []
    filters += [{"term": {k: v}} for k, v in must.items()]
    body = {"size": 1, "sort": [{"@timestamp": "desc"}], "query": {"bool": {"filter": filters}}}
    res = request(f"{url}/{pattern}/_search?ignore_unavailable=true&allow_no_indices=true", "POST", body)
    hits = res.get("hits", {}).get("hits", [])
    if not hits:
        return None
    return {"_index": hits[0]["_index"], "_id": hits[0]["_id"], **hits[0]["_source"]}


def all_documents(
    url: str, pattern: str, query: dict[str, Any] | None = None, page: int = 5000
) -> Iterator[dict[str, Any]]:
    """Every matching document (with `_index` and `_id`), through a scroll so each is seen exactly once."""
    body = {"size": page, "query": query or {"match_all": {}}, "sort": ["_doc"]}
    res = request(f"{url}/{pattern}/_search?scroll=2m&ignore_unavailable=true&allow_no_indices=true", "POST", body)
    scroll_id = res.get("_scroll_id")
    try:
        while True:
            hits = res.get("hits", {}).get("hits", [])
            if not hits:
                return
            for hit in hits:
                yield {"_index": hit["_index"], "_id": hit["_id"], **hit["_source"]}
            res = request(f"{url}/_search/scroll", "POST", {"scroll": "2m", "scroll_id": scroll_id})
            scroll_id = res.get("_scroll_id", scroll_id)
    finally:
        if scroll_id:
            try:
                request(f"{url}/_search/scroll", "DELETE", {"scroll_id": scroll_id})
            except (SearchError, OSError):
                pass  # the scroll expires by itself
