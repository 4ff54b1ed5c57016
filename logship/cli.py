"""`logship` command line: shipper, aggregator, test config, test output, version.

Each side plugs in through two names: `<side>.config.<Side>Config` (the pydantic model of its config
section) and `<side>.app` with `run(config) -> int` and `test_output(config) -> int`. Imports are lazy so
`logship version` and `logship test config` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from logship import __version__
from logship import log as logsetup
from logship.config import SECTIONS, ConfigError, load_file, validate_section

_MODELS = {"shipper": ("shipper.config", "ShipperConfig"), "aggregator": ("aggregator.config", "AggregatorConfig")}


def _model(section: str) -> Any:
    module, name = _MODELS[section]
    return getattr(importlib.import_module(module), name)


def load_section(path: str, section: str) -> Any:
    data = load_file(path)
    return validate_section(_model(section), data, section, path)


def _present_sections(path: str) -> list[str]:
    data = load_file(path)
    present = [s for s in SECTIONS if s in data]
    if not present:
        raise ConfigError(f"{path}: no 'shipper:' or 'aggregator:' section; add one (see docs/configuration.md)")
    return present


def _cmd_run(args: argparse.Namespace) -> int:
    cfg = load_section(args.config, args.command)
    app = importlib.import_module(f"{args.command}.app")
    return int(app.run(cfg))


def _cmd_test_config(args: argparse.Namespace) -> int:
    for section in _present_sections(args.config):
        load_section(args.config, section)
        print(f"{args.config}: {section}: config OK")
    return 0


def _cmd_test_output(args: argparse.Namespace) -> int:
    status = 0
    for section in _present_sections(args.config):
        cfg = load_section(args.config, section)
        app = importlib.import_module(f"{section}.app")
        status = max(status, int(app.test_output(cfg)))
    return status


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"logship {__version__} (python {sys.version.split()[0]})")
    return 0


def _cmd_loggen(args: argparse.Namespace) -> int:
    loggen = importlib.import_module("logship.loggen")
    return int(loggen.main(args.loggen_args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logship", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default="text", choices=["text", "json"])
    sub = parser.add_subparsers(dest="command", required=True)

    for name, help_text in (
        ("shipper", "tail log files and ship them to the aggregator"),
        ("aggregator", "receive from shippers and bulk-write to OpenSearch"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("-c", "--config", required=True, help="YAML config file")
        p.set_defaults(func=_cmd_run)

    test = sub.add_parser("test", help="check a config file or the output it points at")
    test_sub = test.add_subparsers(dest="what", required=True)
    tc = test_sub.add_parser("config", help="validate the config file and exit")
    tc.add_argument("-c", "--config", required=True)
    tc.set_defaults(func=_cmd_test_config)
    to = test_sub.add_parser("output", help="connect to the configured output and report what answers")
    to.add_argument("-c", "--config", required=True)
    to.set_defaults(func=_cmd_test_output)

    v = sub.add_parser("version", help="print the version")
    v.set_defaults(func=_cmd_version)

    g = sub.add_parser(
        "loggen", help="write synthetic Kubernetes-shaped logs (see `logship loggen --help`)", add_help=False
    )
    g.add_argument("loggen_args", nargs=argparse.REMAINDER)
    g.set_defaults(func=_cmd_loggen)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["loggen"]:
        # argparse's REMAINDER does not capture a remainder that starts with an option (`loggen -o DIR`)
        return int(importlib.import_module("logship.loggen").main(argv[1:]))
    args = build_parser().parse_args(argv)
    logsetup.configure(args.log_level, args.log_format)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
