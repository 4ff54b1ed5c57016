"""Beats / Lumberjack v2: the wire between shipper and aggregator (and Filebeat / Logstash)."""

from logship.lumberjack.client import ClientClosed, LumberjackClient
from logship.lumberjack.codec import (
    AckDecoder,
    AckFrame,
    DataFrame,
    DataRun,
    Decoder,
    Frame,
    ProtocolError,
    WindowFrame,
    encode_ack,
    encode_window,
)
from logship.lumberjack.server import Batch, BatchHandler, LumberjackServer, ServerLimits

__all__ = [
    "AckDecoder",
    "AckFrame",
    "Batch",
    "BatchHandler",
    "ClientClosed",
    "DataFrame",
    "DataRun",
    "Decoder",
    "Frame",
    "LumberjackClient",
    "LumberjackServer",
    "ProtocolError",
    "ServerLimits",
    "WindowFrame",
    "encode_ack",
    "encode_window",
]
