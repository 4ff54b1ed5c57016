"""Memory per shipper connection of a real `logship aggregator`: RSS before and after N connections.

    scripts/opensearch.sh start --name connmem --port 9260
    .venv/bin/python -m benchmarks.connection_memory --opensearch http://127.0.0.1:9260 --connections 1000

Starts `logship aggregator -c` (the chart's default limits) against that node, waits until it is
ready and settled, then opens N TCP connections that stay idle, then sends one small window on each
(acked, so each connection's reader, acker and buffers have been used) and leaves them open. RSS is
read with psutil after each step; the result is printed as JSON (KiB per connection for both).
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
from pathlib import Path

import psutil
import yaml

from logship.demo.pipeline import Service, free_port
from logship.lumberjack.codec import AckDecoder, encode_window


def rss_mib(service: Service, settle: float = 3.0) -> float:
    assert service.proc is not None
    time.sleep(settle)
    return float(psutil.Process(service.proc.pid).memory_info().rss) / (1 << 20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--opensearch", required=True)
    ap.add_argument("--connections", type=int, default=1000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="logship-connmem-"))
    port, http = free_port(), free_port()
    cfg = {
        "aggregator": {
            "listen": {"host": "127.0.0.1", "port": port, "idle_timeout": "1h"},
            "routes": [{"tag": "containers", "index": "connmem-%{+YYYY.MM.dd}"}],
            "default_index": "connmem-%{+YYYY.MM.dd}",
            "opensearch": {"hosts": [args.opensearch]},
            "template": {"name": "connmem", "replicas": 0},
            "dead_letter": {"path": str(tmp / "dead-letter.ndjson")},
            "http": {"host": "127.0.0.1", "port": http},
        }
    }
    (tmp / "aggregator.yml").write_text(yaml.safe_dump(cfg))
    service = Service("aggregator", tmp / "aggregator.yml", {}, http, tmp / "aggregator.log")
    service.start()
    socks: list[socket.socket] = []
    try:
        service.wait_ready(120)
        base = rss_mib(service)
        for _ in range(args.connections):
            socks.append(socket.create_connection(("127.0.0.1", port)))
        idle = rss_mib(service)
        event = b'{"message":"connmem","tags":["containers"],"@timestamp":"2026-12-01T00:00:00Z"}'
        frame = encode_window([event], 3)
        for s in socks:
            s.sendall(frame)
        for s in socks:
            acks = AckDecoder()
            s.settimeout(60)
            while 1 not in acks.feed(s.recv(64)):
                pass
        used = rss_mib(service)
        n = args.connections
        print(
            json.dumps(
                {
                    "connections": n,
                    "rss_mib_before": round(base, 1),
                    "rss_mib_idle": round(idle, 1),
                    "rss_mib_after_one_window_each": round(used, 1),
                    "kib_per_idle_connection": round((idle - base) * 1024 / n, 1),
                    "kib_per_used_connection": round((used - base) * 1024 / n, 1),
                    "aggregator_connections_metric": service.metrics().get("logship_lumberjack_connections"),
                },
                indent=1,
            )
        )
    finally:
        for s in socks:
            s.close()
        service.stop(10)


if __name__ == "__main__":
    main()
