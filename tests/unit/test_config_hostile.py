"""`${VAR}` substitution per scalar value, after parsing: no value can change the YAML's structure.

Hostile values (`#`, `: `, quotes, newlines, `*`, `&`, `${...}`) come back exactly as they were set;
a reference in a comment is not an error; the shared host:port and backoff types reject what the
client could not use, with the same parser the client connects with.
"""

from __future__ import annotations

from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.config import AggregatorConfig
from logship.config import ConfigError, load_file, substitute_tree, validate_section
from logship.lumberjack.client import LumberjackClient, parse_host
from shipper.config import ShipperConfig

# what an environment variable can hold: any text without NUL (and without lone surrogates)
env_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60)
HOSTILE = ["abc #def", "a: b", "*star", "'quoted'", '"dq"', "line1\nline2", "&anchor", "!tag", "${NOT_EXPANDED}", " "]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yml"
    p.write_text(text, encoding="utf-8")
    return p


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=env_text)
def test_any_value_arrives_unchanged(tmp_path: Path, value: str) -> None:
    path = write(
        tmp_path,
        "aggregator:\n"
        "  opensearch:\n"
        "    password: ${PW}            # ${IN_A_COMMENT} is ignored\n"
        '    hosts: ["https://os:9200"]\n'
        "  routes:\n"
        "    - {tag: x, index: 'p-${PW:z}-%{+YYYY}'}\n",
    )
    data = load_file(path, env={"PW": value})
    section = data["aggregator"]
    assert section["opensearch"]["password"] == (value if value else None)
    assert section["opensearch"]["hosts"] == ["https://os:9200"]  # structure untouched
    assert section["routes"][0]["index"] == f"p-{value}-%{{+YYYY}}"
    assert set(section) == {"opensearch", "routes"}


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_password_reaches_the_model(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, "aggregator:\n  opensearch:\n    username: admin\n    password: ${OPENSEARCH_PASSWORD}\n")
    data = load_file(path, env={"OPENSEARCH_PASSWORD": value})
    cfg = validate_section(AggregatorConfig, data, "aggregator", str(path))
    assert cfg.opensearch.credentials() == ("admin", value)


def test_defaults_escape_and_empty_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "shipper:\n"
        "  name: ${NODE_NAME:}\n"
        "  scan_interval: ${SCAN:3s}\n"
        "  inputs:\n"
        "    - type: app\n"
        "      paths: ['${ROOT:/r}/log-*.log', '$${ROOT}/x']\n"
        "      fields: {k: 'pre-${EMPTY:}-post', n: 7}\n",
    )
    data = load_file(path, env={})
    cfg = validate_section(ShipperConfig, data, "shipper", str(path))
    assert cfg.name is None  # a whole-value reference that is empty is null, so the default applies
    assert cfg.scan_interval == 3.0
    assert cfg.inputs[0].paths == ["/r/log-*.log", "${ROOT}/x"]
    assert cfg.inputs[0].fields == {"k": "pre--post", "n": 7}


def test_missing_variable_names_key_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "aggregator:\n  opensearch:\n    password: ${OPENSEARCH_PASSWORD}\n")
    with pytest.raises(ConfigError) as info:
        load_file(path, env={})
    msg = str(info.value)
    assert msg.startswith(f"{path}: environment variable(s) OPENSEARCH_PASSWORD not set")
    assert "aggregator.opensearch.password" in msg


def test_reference_in_a_comment_is_not_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "# password: ${UNSET_IN_COMMENT}\nshipper: {}  # ${ALSO_UNSET}\n")
    assert load_file(path, env={}) == {"shipper": {}}


plain = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="$"), max_size=8)
scalars = st.one_of(plain, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))


@given(st.dictionaries(plain, st.lists(scalars, max_size=3) | scalars, max_size=4), env_text)
def test_tree_substitution_keeps_structure(tree: dict[str, object], value: str) -> None:
    """Keys, lists, nesting and non-string scalars come back the same; only references change."""
    out = substitute_tree({"k": tree, "ref": ["${V}", "a${V}b"]}, {"V": value})
    assert out["k"] == tree
    assert out["ref"] == [value or None, f"a{value}b"]


@pytest.mark.parametrize(
    ("host", "expect"),
    [
        ("agg", ("agg", 5044)),
        ("agg:6000", ("agg", 6000)),
        ("[fe80::1]:6000", ("fe80::1", 6000)),
        ("[::1]", ("::1", 5044)),
    ],
)
def test_host_port_accepted_the_way_the_client_connects(host: str, expect: tuple[str, int]) -> None:
    cfg = ShipperConfig.from_dict({"output": {"hosts": [host]}})
    assert parse_host(cfg.output.hosts[0]) == expect


@pytest.mark.parametrize(
    "host", ["fe80::1:6000", "fe80::1", "agg:0", "agg:70000", "agg:x", ":5044", "[::1]:", "agg:", "[::1", "[::1]x"]
)
def test_host_port_rejected_by_config_and_client_alike(host: str) -> None:
    with pytest.raises(ConfigError, match=r"shipper\.output\.hosts\[0\]"):
        validate_section(ShipperConfig, {"shipper": {"output": {"hosts": [host]}}}, "shipper", "s.yml")
    with pytest.raises(ValueError):
        parse_host(host)


def test_unbracketed_ipv6_message_says_what_to_write() -> None:
    with pytest.raises(ConfigError, match=r"must be in brackets, for example \[fe80::1\]:5044"):
        validate_section(ShipperConfig, {"shipper": {"output": {"hosts": ["fe80::1:6000"]}}}, "shipper", "s.yml")


@pytest.mark.parametrize(
    "backoff", [{"initial": 0}, {"initial": "0s"}, {"initial": "10s", "max": "1s"}, {"max": 0}, {"initial": -1}]
)
@pytest.mark.parametrize("side", ["shipper", "aggregator"])
def test_backoff_rejected_on_both_sides(side: str, backoff: dict[str, object]) -> None:
    body: dict[str, object] = {"output": {"backoff": backoff}} if side == "shipper" else {"bulk": {"backoff": backoff}}
    model = ShipperConfig if side == "shipper" else AggregatorConfig
    with pytest.raises(ConfigError, match=r"\.backoff"):
        validate_section(model, {side: body}, side, "c.yml")


def test_client_refuses_a_backoff_it_could_not_use() -> None:
    """The client fails at construction, not later inside a worker that nobody awaits."""
    with pytest.raises(ValueError, match="initial backoff"):
        LumberjackClient(["127.0.0.1:5044"], backoff_initial=0.0)
    with pytest.raises(ValueError, match="maximum backoff"):
        LumberjackClient(["127.0.0.1:5044"], backoff_initial=5.0, backoff_max=1.0)


def test_unquoted_reference_in_a_flow_mapping_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "shipper:\n  http: {host: 127.0.0.1, port: ${PORT:5066}}\n")
    with pytest.raises(ConfigError, match=r"invalid YAML at line 2.*put a \$\{VAR\} reference in quotes"):
        load_file(path, env={})
    path.write_text('shipper:\n  http: {host: 127.0.0.1, port: "${PORT:5066}"}\n')
    cfg = validate_section(ShipperConfig, load_file(path, env={"PORT": "6000"}), "shipper", str(path))
    assert cfg.http.port == 6000


_junk = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=3),
    max_leaves=6,
)


def _shaped(tp: Any) -> st.SearchStrategy[Any]:
    """YAML shaped like the config type (its keys, lists where it has lists), with junk at any level."""
    if get_origin(tp) is Annotated:
        return _shaped(get_args(tp)[0])
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        keys = {f.encode_name: st.deferred(lambda t=f.type: _shaped(t)) for f in msgspec.structs.fields(tp)}
        return st.fixed_dictionaries({}, optional=keys) | _junk
    if get_origin(tp) is list:
        return st.lists(_shaped(get_args(tp)[0]), max_size=2) | _junk
    if get_origin(tp) is dict:
        return st.dictionaries(st.text(max_size=5) | st.integers(), _shaped(get_args(tp)[1]), max_size=2) | _junk
    if get_origin(tp) in (Union, UnionType):
        return st.one_of(*(_shaped(a) for a in get_args(tp) if a is not type(None)), st.none())
    return _junk


@settings(max_examples=150, deadline=None)
@given(st.data())
@pytest.mark.parametrize("model", [ShipperConfig, AggregatorConfig])
def test_any_yaml_gives_a_config_or_a_config_error(model: Any, data: st.DataObject) -> None:
    """Whatever a YAML section holds, loading ends in a config or a ConfigError that names the file."""
    side = "shipper" if model is ShipperConfig else "aggregator"
    body = data.draw(_shaped(model))
    try:
        validate_section(model, {side: body}, side, "c.yml")
    except ConfigError as exc:
        assert all(line.startswith(f"c.yml: {side}") for line in str(exc).split("\n")), str(exc)
