"""logship: a log shipper and aggregator that replaces Filebeat + Logstash in front of OpenSearch."""

__version__ = "0.1.0"
