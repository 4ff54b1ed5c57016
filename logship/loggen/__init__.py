"""Synthetic EKS node logs for the demo, the end-to-end tests and the benchmarks.

    from logship.loggen import GenConfig, Generator
    manifest = Generator(GenConfig(root=tmp, rate=500, duration=5)).run()

See `logship loggen --help` for the command line.
"""

from logship.loggen.cli import main
from logship.loggen.content import MARKER_RE
from logship.loggen.generator import MANIFEST_NAME, GenConfig, Generator, Stats

__all__ = ["MANIFEST_NAME", "MARKER_RE", "GenConfig", "Generator", "Stats", "main"]
