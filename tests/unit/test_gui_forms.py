"""piranha-gui forms: section <-> form values, the loader's errors next to their fields."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address
from pathlib import Path

import pytest

from piranha.config import load, loads, render
from piranha.errors import ConfigError
from piranha.gui import editor, forms
from piranha.gui.document import LineInfo, Section, emit, parse_text, token
from testkit.resolver import FakeResolver

SAMPLE = Path(__file__).resolve().parents[2] / "conf" / "lvs.cf"


DNS = FakeResolver(hosts={}, services={"http": 80})


@pytest.fixture
def cluster():
    return load(str(SAMPLE)).cluster


SCREENS = [
    (forms.GLOBAL, lambda root: root),
    (forms.REDUNDANCY, lambda root: root),
    (forms.VIRTUAL, lambda root: editor.virtual(root, 0)),
    (forms.VIRTUAL, lambda root: editor.virtual(root, 1)),
    (forms.SCRIPTS, lambda root: editor.virtual(root, 0)),
    (forms.SERVER, lambda root: editor.server(root, 0, 0)),
    (forms.SERVER, lambda root: editor.server(root, 1, 0)),
]


@pytest.mark.parametrize(("form", "locate"), SCREENS, ids=lambda x: getattr(x, "name", ""))
def test_every_screen_round_trips_unchanged(cluster, form, locate):
    shown = forms.values(form, locate(editor.sections(cluster)))
    root = editor.sections(cluster)
    outcome = editor.edit_section(cluster, root, locate(root), form, shown, DNS)
    assert outcome.ok and not outcome.fields and not outcome.errors
    assert outcome.cluster == cluster and not outcome.changed


def test_values_show_what_the_file_says(cluster):
    root = editor.sections(cluster)
    shown = forms.values(forms.VIRTUAL, editor.virtual(root, 0))
    assert shown["name"] == "http"
    assert (shown["vip"], shown["device"]) == ("203.0.113.80", "eth0:1")
    assert shown["active"] == "on" and shown["quiesce_server"] == ""
    assert shown["vip_nmask"] == "255.255.255.0"
    assert forms.values(forms.SCRIPTS, editor.virtual(root, 0))["send"] == r"GET / HTTP/1.0\r\n\r\n"


def test_a_bad_ip_is_reported_at_its_field_only(cluster):
    root = editor.sections(cluster)
    section = editor.virtual(root, 0)
    data = forms.values(forms.VIRTUAL, section) | {"vip": "203.0.113.300"}
    outcome = editor.edit_section(cluster, root, section, forms.VIRTUAL, data, DNS)
    assert not outcome.ok
    assert outcome.fields == {"vip": ["address: expected an IP address or host name, found "
                                      "'203.0.113.300' which does not resolve"]}
    assert outcome.errors == []


def test_the_second_token_of_a_pair_gets_its_own_error(cluster):
    root = editor.sections(cluster)
    section = editor.virtual(root, 0)
    data = forms.values(forms.VIRTUAL, section) | {"device": "this-is-far-too-long0"}
    outcome = editor.edit_section(cluster, root, section, forms.VIRTUAL, data, DNS)
    assert list(outcome.fields) == ["device"]
    assert outcome.fields["device"][0].startswith("address: expected an interface name")


def test_several_errors_each_at_its_field(cluster):
    root = editor.sections(cluster)
    data = forms.values(forms.REDUNDANCY, root) | {"keepalive": "soon", "heartbeat_port": "0",
                                                   "syncd_id": "300"}
    outcome = editor.edit_section(cluster, root, root, forms.REDUNDANCY, data, DNS)
    assert outcome.fields == {
        "keepalive": ["keepalive: expected a number of seconds, found 'soon'"],
        "heartbeat_port": ["heartbeat_port: expected a port number 1..65535, found 0"],
        "syncd_id": ["syncd_id: expected an integer 0..255, found 300"],
    }


def test_half_a_pair_is_reported_before_loading(cluster):
    root = editor.sections(cluster)
    data = forms.values(forms.GLOBAL, root) | {"nat_router_device": ""}
    outcome = editor.edit_section(cluster, root, root, forms.GLOBAL, data, DNS)
    assert outcome.fields == {"nat_router_device": ["needed together with NAT Router IP"]}


def test_line_breaks_and_empty_names_are_refused(cluster):
    root = editor.sections(cluster)
    section = editor.server(root, 0, 0)
    data = forms.values(forms.SERVER, section) | {"address": "10.0.0.1\nbackup = 1.2.3.4",
                                                  "name": " "}
    outcome = editor.edit_section(cluster, root, section, forms.SERVER, data, DNS)
    assert outcome.fields == {"address": ["expected one line of printable text"],
                              "name": ["a name is required"]}


def test_values_needing_quotes_are_quoted_not_injected(cluster):
    root = editor.sections(cluster)
    section = editor.virtual(root, 0)
    data = forms.values(forms.SCRIPTS, section) | {"expect": "HTTP/1.1 200 } {",
                                                   "send": "x = y # not a comment"}
    outcome = editor.edit_section(cluster, root, section, forms.SCRIPTS, data, DNS)
    assert outcome.ok, outcome
    assert outcome.cluster is not None
    vs = outcome.cluster.virtuals[0]
    assert (vs.expect, vs.send) == ("HTTP/1.1 200 } {", "x = y # not a comment")
    assert len(outcome.cluster.virtuals) == len(cluster.virtuals)


def test_blank_field_means_the_parser_default(cluster):
    root = editor.sections(cluster)
    data = forms.values(forms.REDUNDANCY, root) | {"keepalive": "", "deadtime": ""}
    outcome = editor.edit_section(cluster, root, root, forms.REDUNDANCY, data, DNS)
    assert outcome.cluster is not None
    assert (outcome.cluster.keepalive, outcome.cluster.deadtime) == (2.0, 5.0)


def test_checkboxes_write_zero_and_one(cluster):
    root = editor.sections(cluster)
    data = forms.values(forms.REDUNDANCY, root)
    del data["monitor_links"]
    outcome = editor.edit_section(cluster, root, root, forms.REDUNDANCY, data, DNS)
    assert outcome.cluster is not None and outcome.cluster.monitor_links is False


def test_a_valid_edit_counts_serial_no_up_and_keeps_other_keys(cluster):
    with_key = replace(cluster, heartbeat_key="0123456789abcdef0123")
    root = editor.sections(with_key)
    data = forms.values(forms.GLOBAL, root) | {"primary": "203.0.113.20"}
    outcome = editor.edit_section(with_key, root, root, forms.GLOBAL, data, DNS)
    assert outcome.changed and outcome.cluster is not None
    assert outcome.cluster == replace(with_key, primary=ip_address("203.0.113.20"),
                                      primary_private=ip_address("203.0.113.20"),
                                      serial_no=with_key.serial_no + 1)
    assert outcome.text == render(outcome.cluster)
    assert loads(outcome.text).cluster == outcome.cluster


def test_errors_in_other_blocks_go_to_the_general_list(cluster):
    root = editor.sections(cluster)
    section = editor.virtual(root, 0)
    data = forms.values(forms.VIRTUAL, section) | {"vip": "2001:db8::80"}
    outcome = editor.edit_section(cluster, root, section, forms.VIRTUAL, data, DNS)
    assert outcome.fields == {}
    assert outcome.errors == [
        f"server 'web{n}': address: expected an IPv6 address like the virtual's, found "
        f"192.168.10.1{n}" for n in (1, 2, 3)]


def test_add_block_and_header_errors(cluster):
    root = editor.sections(cluster)
    data = {"name": "http", "vip": "203.0.113.90", "device": "eth0:3", "port": "8080",
            "active": "on"}
    outcome = editor.add_block(cluster, root, root, "virtual", forms.VIRTUAL, data, DNS)
    assert outcome.fields == {"name": ["virtual 'http' is defined twice"]}
    root = editor.sections(cluster)
    data = {"name": "new", "active": "on", "port": "81"}
    outcome = editor.add_block(cluster, root, root, "virtual", forms.VIRTUAL, data, DNS)
    assert outcome.fields == {"vip": ["virtual 'new' is active but has no address (expected "
                                      "'address = IP DEVICE')"]}


def test_add_toggle_and_remove(cluster):
    root = editor.sections(cluster)
    data = {"name": "dns", "vip": "203.0.113.53", "device": "eth0:9", "port": "53",
            "protocol": "udp"}
    outcome = editor.add_block(cluster, root, root, "virtual", forms.VIRTUAL, data, DNS)
    assert outcome.cluster is not None
    added = outcome.cluster.virtuals[-1]
    assert (added.name, added.active, added.port, added.protocol.value) == \
        ("dns", False, 53, "udp")
    root = editor.sections(outcome.cluster)
    toggled = editor.toggle(outcome.cluster, root, editor.virtual(root, 2), DNS)
    assert toggled.cluster is not None and toggled.cluster.virtuals[-1].active
    root = editor.sections(toggled.cluster)
    removed = editor.remove_block(toggled.cluster, root, root, editor.virtual(root, 2), DNS)
    assert removed.cluster is not None
    assert removed.cluster.virtuals == cluster.virtuals
    assert removed.cluster.serial_no == cluster.serial_no + 3


def test_toggle_that_breaks_the_file_says_why(cluster):
    root = editor.sections(cluster)
    data = {"name": "todo", "port": "81"}
    outcome = editor.add_block(cluster, root, root, "virtual", forms.VIRTUAL, data, DNS)
    assert outcome.cluster is not None
    root = editor.sections(outcome.cluster)
    toggled = editor.toggle(outcome.cluster, root, editor.virtual(root, 2), DNS)
    assert not toggled.ok
    assert toggled.errors == ["virtual 'todo' is active but has no address (expected "
                              "'address = IP DEVICE')"]


def test_emit_maps_lines_and_columns():
    root = Section(None, items={"primary": ("10.0.0.1",)})
    vs = Section("virtual", "my web", {"address": ("10.0.0.80", "eth0:1")})
    root.children.append(vs)
    text, where = emit(root)
    assert text == ("primary = 10.0.0.1\nvirtual \"my web\" {\n    address = 10.0.0.80 eth0:1\n"
                    "}\n")
    assert where[3] == LineInfo(vs, "address", ((15, 24), (25, 31)))
    assert [where[3].part_at(c) for c in (5, 15, 23, 24, 25, 31)] == [0, 0, 0, 0, 1, 2]
    assert parse_text(text).children[0].name == "my web"


def test_token_quotes_only_when_needed():
    assert token("eth0:1") == "eth0:1"
    assert token("two words") == '"two words"'
    assert token("}") == '"}"'
    assert token('say "hi"') == '"say "hi""'  # the lexer closes at a quote before a blank
    with pytest.raises(ValueError):
        token("a\" b' c")


def test_locate_without_line_info_is_general():
    problem = ConfigError("lvs.cf", 1, 1, "missing 'primary = IP'")
    fields, general = forms.locate([problem], {}, Section(None), forms.GLOBAL)
    assert (fields, general) == ({}, ["missing 'primary = IP'"])
