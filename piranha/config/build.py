"""lvs.cf builder: parse tree -> frozen ``Cluster``, collecting every error and warning.

Two passes: ``read_section`` converts each assignment through the keyword tables (last one
wins, like Piranha); then the ``_virtual``/``_server``/``_cluster`` functions apply the derived
values of Piranha's parser and the cross-field checks, each error located at the key (or block
header) it is about.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from piranha.config import schema
from piranha.config.lexer import Token
from piranha.config.parser import Assignment, Block
from piranha.config.values import Context, Invalid, is_unset, single
from piranha.errors import ConfigError
from piranha.model import (
    Cluster,
    FailoverService,
    Network,
    RealServer,
    ServiceProtocol,
    ServiceType,
    VirtualServer,
)
from piranha.text import hostport


@dataclass
class Section:
    """The converted keys of one block, with the location of each."""

    values: dict[str, Any] = field(default_factory=dict)
    #: the key token and the first value token of each converted key
    where: dict[str, Token] = field(default_factory=dict)
    value_at: dict[str, Token] = field(default_factory=dict)
    #: keys that were given but whose value is invalid (already reported)
    failed: set[str] = field(default_factory=set)
    header: Token | None = None
    name: str = ""

    def missing(self, key: str) -> bool:
        """True when ``key`` was not given at all (not merely given with a bad value)."""
        return key not in self.values and key not in self.failed


class Builder:
    """Collects errors and warnings while turning a parse tree into a ``Cluster``."""

    def __init__(self, filename: str, ctx: Context):
        self.filename = filename
        self.ctx = ctx
        self.errors: list[ConfigError] = []
        self.warnings: list[ConfigError] = []

    def error(self, token: Token, message: str) -> None:
        self.errors.append(ConfigError(self.filename, token.line, token.column, message))

    def warn(self, token: Token, message: str) -> None:
        self.warnings.append(
            ConfigError(self.filename, token.line, token.column, message, "warning"))

    # -- pass 1: keyword tables ------------------------------------------------------------

    def read_section(self, block: Block, kind: str | None) -> Section:
        """Convert the assignments of ``block`` (not its sub-blocks) through its table."""
        table = schema.TABLES[kind]
        section = Section(header=block.kind, name=block.name.text if block.name else "")
        for item in block.items:
            if isinstance(item, Assignment):
                self._assign(section, item, table, kind)
        return section

    def _assign(self, section: Section, item: Assignment, table: dict[str, schema.Key],
                kind: str | None) -> None:
        name = item.key.text
        key = table.get(name)
        if key is None:
            self._unknown(item.key, kind, table)
            return
        section.values.pop(name, None)
        if item.broken:
            section.failed.add(name)
            return
        before = len(self.ctx.warnings)
        try:
            tokens = item.values if key.arity != "one" else (single(item.values),)
            value = key.convert(tokens, self.ctx)
        except Invalid as bad:
            self.error(bad.token, f"{name}: {bad.message}")
            section.failed.add(name)
            return
        finally:
            for token, message in self.ctx.warnings[before:]:
                self.warn(token, f"{name}: {message}")
            del self.ctx.warnings[before:]
        where = kind or "global"
        if key.use is schema.Use.LEGACY:
            self.warn(item.key, f"'{name}' is a legacy {where} keyword; ignored")
        elif key.use is schema.Use.GUI_ONLY:
            self.warn(item.key, f"'{name}' in a {where} block has no effect (Piranha's GUI "
                      "could write it, its daemons rejected it); ignored")
        elif key.use is schema.Use.NO_EFFECT:
            self.warn(item.key, f"'{name}' has no effect in a {where} block; ignored")
        else:
            section.values[name] = value
            section.where[name] = item.key
            section.value_at[name] = item.values[0]
            section.failed.discard(name)

    def _unknown(self, token: Token, kind: str | None, table: dict[str, schema.Key]) -> None:
        where = f"a {kind} block" if kind else "the global section"
        places = [k for k, t in schema.TABLES.items()
                  if token.text in t and t[token.text].use in _REAL_USES]
        hint = difflib.get_close_matches(token.text, table, n=1)
        if places:
            self.error(token, f"keyword '{token.text}' is not allowed in {where} "
                       f"(it belongs in {_places(places)})")
        elif hint:
            self.error(token, f"unknown keyword '{token.text}' in {where} "
                       f"(did you mean '{hint[0]}'?)")
        else:
            self.error(token, f"unknown keyword '{token.text}' in {where}")

    # -- pass 2: model objects and checks ------------------------------------------------

    def server(self, block: Block, default_port: int) -> tuple[RealServer, Section]:
        """A real server; its port defaults to the virtual's port read so far."""
        s = self.read_section(block, "server")
        values = dict(s.values)
        values.pop("nmask", None)
        values.setdefault("port", default_port)
        if "address" in values and is_unset(values["address"]):
            values["address"] = None
        return RealServer(name=s.name, **values), s

    def virtual(self, block: Block, network: Network) -> VirtualServer:
        """A virtual server with its real servers, checked."""
        v = self.read_section(block, "virtual")
        port_so_far = 80
        servers: list[tuple[RealServer, Section]] = []
        for item in block.items:
            if isinstance(item, Assignment) and item.key.text == "port":
                port_so_far = self._port_value(item, port_so_far)
            elif isinstance(item, Block):
                servers.append(self.server(item, port_so_far))
        values = dict(v.values)
        self._normalize_virtual(values)
        virtual = VirtualServer(name=v.name, servers=tuple(s for s, _ in servers), **values)
        self._check_virtual(virtual, v, servers, network)
        return virtual

    def _port_value(self, item: Assignment, fallback: int) -> int:
        """The value of a ``port`` line at this point of the block (errors reported elsewhere)."""
        try:
            return int(schema.VIRTUAL["port"].convert(item.values[:1], Context(self.ctx.resolver)))
        except Invalid:
            return fallback

    @staticmethod
    def _normalize_virtual(values: dict[str, Any]) -> None:
        values["protocol"] = ServiceProtocol(values.get("protocol", "tcp"))
        if "sorry_server" in values and is_unset(values["sorry_server"]):
            values["sorry_server"] = None
        if values.get("load_monitor") == "none":
            values["load_monitor"] = None
        address = values.get("address")
        if values.get("persistent", 0) < 0:
            values["persistent"] = 0
        full = 128 if address is not None and address.ip.version == 6 else 32
        if values.get("pmask") == full:
            values["pmask"] = None  # the kernel's default; Piranha drops it too
        if values.get("persistent", 0) == 0:
            values["pmask"] = None  # Piranha passes -M only with -p (warned in _check_virtual)

    def _check_virtual(self, vs: VirtualServer, sec: Section,
                       servers: list[tuple[RealServer, Section]], network: Network) -> None:
        here = sec.header
        assert here is not None
        if sec.values.get("persistent", 0) < 0:
            self.warn(sec.where["persistent"], "persistent: a negative value means no "
                      "persistence; read as 0")
        if sec.values.get("pmask") is not None and vs.persistent == 0 \
                and "persistent" not in sec.failed:
            self.warn(sec.where["pmask"], "pmask: ignored without persistent > 0 (as Piranha "
                      "did); set persistent or remove pmask")
        if vs.address is None or is_unset(vs.address.ip):
            if vs.active and "address" not in sec.failed:
                self._no_address(f"virtual '{vs.name}'", sec, "address = IP DEVICE")
        else:
            self._check_family(vs, sec)
        if vs.port == 0 and vs.fwmark == 0:
            self.error(sec.value_at.get("port", here), f"virtual '{vs.name}' has port 0 and no "
                       "fwmark (expected a port 1..65535 or a fwmark)")
        if vs.use_regex and vs.expect is not None and vs.send_program is None:
            try:
                re.compile(vs.expect.encode("utf-8", "surrogateescape"))
            except re.error as exc:
                self.error(sec.value_at["expect"], f"expect: not a valid regular expression "
                           f"({exc}), found '{vs.expect}'")
        if vs.send_program is not None and vs.send is not None:
            self.warn(sec.where["send"], "send: ignored because send_program is set")
        self._check_servers(vs, servers, network)

    def _no_address(self, what: str, sec: Section, expected: str) -> None:
        if "address" in sec.values:
            self.error(sec.value_at["address"], f"{what} is active but its address is "
                       "unset (0.0.0.0)")
        else:
            assert sec.header is not None
            self.error(sec.header, f"{what} is active but has no address "
                       f"(expected '{expected}')")

    def _check_family(self, vs: VirtualServer, sec: Section) -> None:
        assert vs.address is not None
        family = vs.address.ip.version
        limit = 32 if family == 4 else 128
        for key in ("vip_nmask", "pmask"):
            value = getattr(vs, key)
            if value is not None and value > limit:
                self.error(sec.value_at[key], f"{key}: expected a prefix length 0..{limit} for "
                           f"IPv{family} address {vs.address.ip}, found {value}")
        if vs.sorry_server is not None and vs.sorry_server.version != family:
            self.error(sec.value_at["sorry_server"], f"sorry_server: expected an IPv{family} "
                       f"address like the virtual's, found {vs.sorry_server}")

    def _check_servers(self, vs: VirtualServer, servers: list[tuple[RealServer, Section]],
                       network: Network) -> None:
        names: dict[str, Token] = {}
        endpoints: dict[tuple[Any, int], str] = {}
        for rs, sec in servers:
            here = sec.header
            assert here is not None
            if rs.name in names:
                self.error(here, f"server '{rs.name}' is defined twice in virtual "
                           f"'{vs.name}' (first at line {names[rs.name].line})")
            names.setdefault(rs.name, here)
            if rs.port == 0 and vs.fwmark == 0 and "port" in sec.values:
                self.error(sec.value_at["port"], f"server '{rs.name}': port 0 is only "
                           "allowed in a fwmark virtual")
            if rs.address is None:
                if rs.active and "address" not in sec.failed:
                    self._no_address(f"server '{rs.name}'", sec, "address = IP")
                continue
            vip = vs.address.ip if vs.address is not None else None
            if vip is not None and not is_unset(vip) and vip.version != rs.address.version \
                    and network is not Network.TUNNEL:
                self.error(sec.value_at["address"], f"address: expected an IPv{vip.version} "
                           f"address like the virtual's, found {rs.address}")
            if rs.active:
                endpoint = (rs.address, rs.port)
                if endpoint in endpoints:
                    self.error(sec.value_at["address"], f"server '{rs.name}' has the same "
                               f"address and port ({hostport(*endpoint)}) as server "
                               f"'{endpoints[endpoint]}'")
                endpoints.setdefault(endpoint, rs.name)
            if "port" not in sec.values and vs.port != rs.port:
                self.warn(here, f"server '{rs.name}' uses port {rs.port}, the virtual's port "
                          "when the server block was read (a later 'port' line does not "
                          "apply to it)")
        active = [(rs, sec) for rs, sec in servers if rs.active and rs.address is not None]
        if vs.active and active and all(rs.weight == 0 for rs, _ in active):
            first = active[0][1]
            where = first.value_at.get("weight", first.header)
            assert where is not None
            self.warn(where, f"virtual '{vs.name}': every active real server has weight 0, so "
                      "the virtual gets no traffic (only a sorry_server could answer)")

    def failover(self, block: Block, fos: bool) -> FailoverService:
        """A legacy failover service (``fos``: service = fos, so it must be runnable)."""
        f = self.read_section(block, "failover")
        for item in block.items:
            if isinstance(item, Block) and item.kind is not None:
                self.error(item.kind, f"{item.describe()} is not allowed in failover "
                           f"'{f.name}' (real servers belong in virtual blocks)")
        values = dict(f.values)
        values["protocol"] = ServiceProtocol(values.get("protocol", "tcp"))
        service = FailoverService(name=f.name, **values)
        assert f.header is not None
        if service.active and f.missing("address"):
            self.error(f.header, f"failover '{service.name}' is active but has no address")
        for key in ("start_cmd", "stop_cmd"):
            if fos and service.active and f.missing(key):
                self.error(f.header, f"failover '{service.name}' is active but has no {key}")
        return service

    def cluster(self, root: Block) -> Cluster:
        """The whole configuration, with the global checks."""
        g = self.read_section(root, None)
        values = dict(g.values)
        network = Network(values.get("network", "nat"))
        virtuals, failovers = [], []
        for item in root.items:
            if isinstance(item, Block) and item.kind_text == "virtual":
                virtuals.append((self.virtual(item, network), item))
            elif isinstance(item, Block) and item.kind_text == "failover":
                failovers.append((self.failover(item, values.get("service") == "fos"), item))
        self._globals(values, g)
        self._duplicates(virtuals, failovers)
        cluster = Cluster(virtuals=tuple(v for v, _ in virtuals),
                          failovers=tuple(f for f, _ in failovers), **values)
        self._check_cluster(cluster, g, failovers)
        return cluster

    def _globals(self, values: dict[str, Any], g: Section) -> None:
        values["service"] = ServiceType(values.get("service", "lvs"))
        values["network"] = Network(values.get("network", "nat"))
        for key in ("primary", "primary_private", "backup_private"):
            if key in values and is_unset(values[key]):
                self.error(g.value_at[key], f"{key}: expected this director's address, found "
                           f"{values[key]}")
        self._check_nat_nmask(values, g)
        if "backup" in values and is_unset(values["backup"]):
            values["backup"] = None
        if "primary_private" not in values:
            # Piranha: without primary_private both private paths are the public addresses
            if "backup_private" in values:
                self.warn(g.where["backup_private"], "backup_private: ignored because "
                          "primary_private is not set (the public addresses are used)")
            values["primary_private"] = values.get("primary")
            values["backup_private"] = values.get("backup")
        if values.get("backup_active") and values.get("backup") is None \
                and "backup" not in g.failed:
            self.warn(g.where["backup_active"], "backup_active = 1 but no backup address is "
                      "set; running without a backup director")
            values["backup_active"] = False

    def _check_nat_nmask(self, values: dict[str, Any], g: Section) -> None:
        router = values.get("nat_router")
        family = router.ip.version if router is not None else 4
        limit = 32 if family == 4 else 128
        prefix = values.get("nat_nmask")
        if prefix is not None and prefix > limit:
            self.error(g.value_at["nat_nmask"], f"nat_nmask: expected a prefix length "
                       f"0..{limit} for IPv{family} nat_router, found {prefix}")

    def _check_cluster(self, c: Cluster, g: Section,
                       failovers: list[tuple[FailoverService, Block]]) -> None:
        top = Token("", 1, 1)
        if c.primary is None and g.missing("primary"):
            self.error(top, "missing 'primary = IP' (the primary director's address)")
        if c.backup_active and "primary_private" in g.values and g.missing("backup_private"):
            self.error(g.where["primary_private"], "primary_private is set but "
                       "backup_private is not (the backup needs its own private address)")
        if c.backup_active and c.deadtime <= c.keepalive:  # no heartbeats without a partner
            self.warn(g.where.get("deadtime", g.where.get("keepalive", top)),
                      f"deadtime ({c.deadtime:g} s) should be longer than keepalive "
                      f"({c.keepalive:g} s), or the partner is declared dead between "
                      "heartbeats")
        if c.service is ServiceType.LVS and not c.active_virtuals():
            self.warn(top, "no active virtual service: pulse and lvsd will have nothing "
                      "to run")
        if c.service is ServiceType.FOS and not any(f.active for f, _ in failovers):
            self.warn(top, "service = fos but no active failover service")

    def _duplicates(self, virtuals: list[tuple[VirtualServer, Block]],
                    failovers: list[tuple[FailoverService, Block]]) -> None:
        blocks: Iterable[tuple[Any, Block]] = [*virtuals, *failovers]
        seen: dict[tuple[str, str], int] = {}
        for obj, block in blocks:
            assert block.kind is not None
            key = (block.kind.text, obj.name)
            if key in seen:
                self.error(block.kind, f"{key[0]} '{obj.name}' is defined twice "
                           f"(first at line {seen[key]})")
            seen.setdefault(key, block.kind.line)
        services: dict[tuple[Any, ...], tuple[VirtualServer, Block]] = {}
        for vs, block in virtuals:
            if not vs.active or vs.address is None:
                continue
            assert block.kind is not None
            if vs.fwmark:
                key2: tuple[Any, ...] = ("fwmark", vs.fwmark, vs.address.ip.version)
            else:
                key2 = (vs.address.ip, vs.port, vs.protocol)
            first = services.setdefault(key2, (vs, block))
            if first[0] is vs:
                continue
            if not vs.fwmark:
                what = f"{vs.protocol.value} {hostport(vs.address.ip, vs.port)}"
                self.error(block.kind, f"virtual '{vs.name}' uses the same service ({what}) "
                           f"as active virtual '{first[0].name}'")
                continue
            # Piranha ran virtuals sharing a mark as one fwmark service holding the real
            # servers of all (Red Hat's HTTP + HTTPS recipe): only conflicting settings fail
            for setting, mine, theirs in _service_settings(vs, first[0]):
                if mine != theirs:
                    assert first[1].kind is not None
                    self.error(block.kind, f"virtual '{vs.name}' shares fwmark {vs.fwmark} "
                               f"with virtual '{first[0].name}' (line {first[1].kind.line}) "
                               f"but sets {setting} = {mine} where it has {theirs}: virtuals "
                               "sharing a mark are one IPVS service")


def _service_settings(vs: VirtualServer,
                      other: VirtualServer) -> list[tuple[str, object, object]]:
    """(keyword, value in ``vs``, value in ``other``) of what one IPVS service holds once."""
    return [("scheduler", vs.scheduler, other.scheduler),
            ("persistent", vs.persistent, other.persistent),
            ("pmask", vs.pmask, other.pmask),
            ("protocol", vs.protocol.value, other.protocol.value)]


#: keyword uses that make a keyword "belong" to a block kind (for the wrong-block message)
_REAL_USES = (schema.Use.STORE, schema.Use.LEGACY)


def _places(kinds: list[str | None]) -> str:
    """``the global section``, ``virtual or server blocks``, or both joined by "or"."""
    blocks = [k for k in kinds if k is not None]
    parts = ["the global section"] if None in kinds else []
    if blocks:
        listed = ", ".join(blocks[:-1]) + (" or " if len(blocks) > 1 else "") + blocks[-1]
        parts.append(f"{listed} blocks")
    return " or ".join(parts)


