"""Index template (SPEC §4 mappings) and the optional ISM retention policy.

The template covers the indices the routes write to: `logstash-logs-*` for the default routes (the
common prefix of every route), else one pattern per route. Strings default to keyword, as in Filebeat's
template, so aggregations work on every field; only `message` is analysed text.
"""

from __future__ import annotations

import logging
from typing import Any

from opensearchpy import AsyncOpenSearch, NotFoundError

from aggregator.routing import IndexPattern
from logship import __version__

log = logging.getLogger(__name__)

ISM_PLUGIN = "opensearch-index-management"


def _common_prefix(names: list[str]) -> str:
    if not names:
        return ""
    first, last = min(names), max(names)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def index_patterns(patterns: list[IndexPattern]) -> list[str]:
    """`["logstash-logs-*"]` for the default routes: the common prefix when it is a real one."""
    prefixes = sorted({p.static_prefix for p in patterns})
    common = _common_prefix(prefixes)
    if len(common) >= 3:
        return [common + "*"]
    return [p + "*" for p in prefixes if p] or ["*"]


def _keyword() -> dict[str, Any]:
    return {"type": "keyword", "ignore_above": 1024}


def template_body(patterns: list[str], shards: int, replicas: int) -> dict[str, Any]:
    return {
        "index_patterns": patterns,
        "priority": 100,
        "_meta": {"managed_by": "logship", "logship_version": __version__},
        "template": {
            "settings": {"index": {"number_of_shards": shards, "number_of_replicas": replicas}},
            "mappings": {
                "dynamic_templates": [
                    {
                        "kubernetes": {
                            "path_match": "kubernetes.*",
                            "match_mapping_type": "string",
                            "mapping": _keyword(),
                        }
                    },
                    {"container": {"path_match": "container.*", "match_mapping_type": "string", "mapping": _keyword()}},
                    {"agent": {"path_match": "agent.*", "match_mapping_type": "string", "mapping": _keyword()}},
                    {"strings_as_keyword": {"match_mapping_type": "string", "mapping": _keyword()}},
                ],
                "properties": {
                    "@timestamp": {"type": "date"},
                    "message": {"type": "text"},
                    "tags": _keyword(),
                    "stream": _keyword(),
                    "host": {"properties": {"name": _keyword()}},
                    "log": {
                        "properties": {
                            "file": {
                                "properties": {
                                    "path": _keyword(),
                                    "device_id": _keyword(),
                                    "inode": _keyword(),
                                    "fingerprint": _keyword(),
                                }
                            },
                            "offset": {"type": "long"},
                            "flags": _keyword(),
                        }
                    },
                    "ecs": {"properties": {"version": _keyword()}},
                    "input": {"properties": {"type": _keyword()}},
                    "kubernetes": {
                        "properties": {
                            "pod": {"properties": {"name": _keyword()}},
                            "namespace": _keyword(),
                            "container": {"properties": {"name": _keyword()}},
                            "node": {"properties": {"name": _keyword()}},
                        }
                    },
                    "container": {"properties": {"id": _keyword(), "runtime": _keyword()}},
                    "agent": {
                        "properties": {
                            "type": _keyword(),
                            "version": _keyword(),
                            "name": _keyword(),
                            "id": _keyword(),
                            "ephemeral_id": _keyword(),
                        }
                    },
                },
            },
        },
    }


async def install_template(client: AsyncOpenSearch, name: str, patterns: list[str], shards: int, replicas: int) -> None:
    """Create or update (PUT is idempotent) the composable index template `name`."""
    await client.indices.put_index_template(name=name, body=template_body(patterns, shards, replicas))
    log.info("index template %s installed for %s", name, ", ".join(patterns))


async def template_installed(client: AsyncOpenSearch, name: str) -> bool:
    try:
        await client.indices.get_index_template(name=name)
    except NotFoundError:
        return False
    return True


async def has_ism(client: AsyncOpenSearch) -> bool:
    plugins = await client.cat.plugins(format="json")
    return any(p.get("component") == ISM_PLUGIN for p in plugins or [])


def ism_policy_body(patterns: list[str], delete_after_s: float) -> dict[str, Any]:
    age = f"{max(1, round(delete_after_s / 3600))}h"
    return {
        "policy": {
            "description": f"logship: delete indices older than {age}",
            "default_state": "hot",
            "states": [
                {
                    "name": "hot",
                    "actions": [],
                    "transitions": [{"state_name": "delete", "conditions": {"min_index_age": age}}],
                },
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
            ],
            "ism_template": [{"index_patterns": patterns, "priority": 100}],
        }
    }


async def install_ism_policy(client: AsyncOpenSearch, name: str, patterns: list[str], delete_after_s: float) -> bool:
    """Create or update the retention policy; False (with a warning) when the ISM plugin is absent."""
    if not await has_ism(client):
        log.warning(
            "ism_delete_after is set but this OpenSearch has no Index State Management plugin (%s); "
            "indices will NOT be deleted automatically. Install the plugin or delete old indices yourself",
            ISM_PLUGIN,
        )
        return False
    path = f"/_plugins/_ism/policies/{name}"
    body = ism_policy_body(patterns, delete_after_s)
    params: dict[str, Any] = {}
    try:
        current = await client.transport.perform_request("GET", path)
        params = {"if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]}
    except NotFoundError:
        pass
    await client.transport.perform_request("PUT", path, params=params, body=body)
    log.info(
        "ISM policy %s installed: delete %s after %s",
        name,
        ", ".join(patterns),
        body["policy"]["states"][0]["transitions"][0]["conditions"]["min_index_age"],
    )
    return True
