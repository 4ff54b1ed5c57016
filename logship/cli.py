"""`logship` command line: shipper, aggregator, test config, test output, version.

Each side plugs in through two names: `<side>.config.<Side>Config` (the struct of its config
section) and `<side>.app` with `run(config) -> int` and `test_output(config) -> int`. Imports are lazy so
`logship version` and `logship test config` stay fast.

An error ends the command with one or two lines on stderr (what failed, what to do); the traceback is
printed only with `--log-level debug`. `--log-level` and `--log-format` may come before or after the
subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from logship import __version__
from logship import log as logsetup
from logship.config import SECTIONS, ConfigError, load_file, validate_section

_MODELS = {"shipper": ("shipper.config", "ShipperConfig"), "aggregator": ("aggregator.config", "AggregatorConfig")}
_LOG_LEVELS = ["debug", "info", "warning", "error"]
_CONFIG_HELP = "YAML config file (see docs/configuration.md); ${VAR} and ${VAR:default} are read from the environment"


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
    if args.log_level != "debug":  # the command reports each failure itself; the client's warnings repeat it
        logging.getLogger("opensearch").setLevel(logging.ERROR)
    status = 0
    for section in _present_sections(args.config):
        cfg = load_section(args.config, section)
        app = importlib.import_module(f"{section}.app")
        status = max(status, int(app.test_output(cfg)))
    return status


def _version_line() -> str:
    return f"logship {__version__} (python {sys.version.split()[0]})"


def _cmd_version(args: argparse.Namespace) -> int:
    print(_version_line())
    return 0


def _log_options(defaults: bool) -> argparse.ArgumentParser:
    """--log-level/--log-format for the top level and, without defaults, again for every subcommand."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("logging")
    group.add_argument(
        "--log-level",
        choices=_LOG_LEVELS,
        default="info" if defaults else argparse.SUPPRESS,
        help="least severe messages logged (default: info); debug also prints tracebacks of errors",
    )
    group.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text" if defaults else argparse.SUPPRESS,
        help="text lines for people, or one JSON object per line for a log collector (default: text)",
    )
    return parent


def _config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, metavar="FILE", help=_CONFIG_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logship",
        description="Log shipper and aggregator: tails container and app logs, ships them over Lumberjack v2, "
        "bulk-writes them to OpenSearch.",
        parents=[_log_options(defaults=True)],
    )
    parser.add_argument("-V", "--version", action="version", version=_version_line(), help="print the version")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_log_options(defaults=False)]

    for name, help_text in (
        ("shipper", "tail log files and ship them to the aggregator"),
        ("aggregator", "receive from shippers and bulk-write to OpenSearch"),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text, parents=common)
        _config_option(p)
        p.set_defaults(func=_cmd_run)

    test = sub.add_parser(
        "test",
        help="check a config file or the output it points at",
        description="check a config file or the output it points at",
    )
    test_sub = test.add_subparsers(dest="what", required=True, metavar="WHAT")
    text = (
        "validate every section of the config file (shipper: and/or aggregator:) without starting anything; "
        "prints 'config OK' per section, exit 0, or the key and the problem, exit 2"
    )
    tc = test_sub.add_parser("config", help="validate the config file and exit", description=text, parents=common)
    _config_option(tc)
    tc.set_defaults(func=_cmd_test_config)
    text = (
        "shipper: connect to each aggregator in output.hosts (with TLS if configured); aggregator: reach "
        "OpenSearch and check the index template. Exit 0 if everything answers, 1 if not"
    )
    to = test_sub.add_parser(
        "output", help="connect to the configured output and report what answers", description=text, parents=common
    )
    _config_option(to)
    to.set_defaults(func=_cmd_test_output)

    v = sub.add_parser("version", help="print the version", description="print the version", parents=common)
    v.set_defaults(func=_cmd_version)

    sub.add_parser(
        "loggen", help="write synthetic Kubernetes-shaped logs (see `logship loggen --help`)", add_help=False
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["loggen"]:
        # loggen has its own parser, options and all
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
    except Exception as exc:  # an operator gets what failed and what to do; developers ask for the rest
        if args.log_level == "debug":
            traceback.print_exc()
        print(f"logship {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if args.log_level != "debug":
            print("  run again with --log-level debug for the details", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
