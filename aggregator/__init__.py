"""The server: receives Lumberjack v2 windows, routes events to daily indices, bulk-writes to OpenSearch."""
