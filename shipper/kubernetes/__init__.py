"""Kubernetes metadata from the API server: one watch per node, a cache, per-pod control by annotations.

`provider.MetadataProvider` is what the rest of the shipper sees: asked when a container log file is
opened (skip it, wait briefly for its pod, per-pod multi-line/timestamp patterns) and when events are
built (the fields to add). Everything else here is pure logic, apart from `client.py` (the API calls).
"""
