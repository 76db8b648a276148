"""Contract tests: our hand-written xsd/ and wsdl/ must be wire-identical with the
real ШЭП (SHEP) v10 WSDL/XSD set kept as third-party data under
../shared/peers/shep-wsdl/ (canonical copy: aarystanovv-shep-service/).

Nothing here loads anything over the network: every document comes from disk.
"""

from __future__ import annotations

import copy
import difflib
import functools
from pathlib import Path
from urllib.parse import urlparse

import pytest
from lxml import etree

REPO_ROOT = Path(__file__).resolve().parents[1]
XSD_DIR = REPO_ROOT / "xsd"
WSDL_DIR = REPO_ROOT / "wsdl"
PEERS = REPO_ROOT.parent / "shared" / "peers" / "shep-wsdl"
CANON = PEERS / "aarystanovv-shep-service"
FLAT_HUB = PEERS / "flattened" / "hub.xsd"
SAMPLES = PEERS / "samples"

if not CANON.is_dir() or not FLAT_HUB.is_file():
    pytest.skip(
        f"real ШЭП WSDL/XSD set not found at {PEERS} (needs aarystanovv-shep-service/ and flattened/hub.xsd)",
        allow_module_level=True,
    )

XS = "http://www.w3.org/2001/XMLSchema"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
SOAP11_BIND = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"

NS_COMMON = "http://bip.bee.kz/common/v10/Types"
NS_SYNC = "http://bip.bee.kz/SyncChannel/v10/Types"
NS_SYNC_REQ = "http://bip.bee.kz/SyncChannel/v10/Types/Request"
NS_SYNC_RESP = "http://bip.bee.kz/SyncChannel/v10/Types/Response"
NS_ASYNC = "http://bip.bee.kz/AsyncChannel/v10/Types"
NS_ASYNC_ITYPES = "http://bip.bee.kz/AsyncChannel/v10/ITypes"
NS_ASYNC_CLIENT = "http://bip.bee.kz/AsyncChannel/v10/Types/Client"

OUR_XSD = {
    "common-v10.xsd": NS_COMMON,
    "sync-v10.xsd": NS_SYNC,
    "sync-v10-request.xsd": NS_SYNC_REQ,
    "sync-v10-response.xsd": NS_SYNC_RESP,
    "async-v10.xsd": NS_ASYNC,
    "async-v10-itypes.xsd": NS_ASYNC_ITYPES,
    "async-v10-client.xsd": NS_ASYNC_CLIENT,
}

# (our service file, real service file relative to CANON, expected operations, our soap:address)
SERVICES = {
    "sync": (
        "SyncChannelHttp_Service.wsdl",
        "SyncChannel/v10/Interfaces/SyncChannelHttp_Service.wsdl",
        {"SendMessage"},
        "http://localhost:8080/bip-sync/",
    ),
    "async": (
        "AsyncChannelHttp_Service.wsdl",
        "AsyncChannel/v10/Interfaces/AsyncChannelHttp_Service.wsdl",
        {"sendMessage", "sendDeliveryNotification", "getMessageStatus", "getMessages"},
        "http://localhost:8080/bip-async/",
    ),
    "push": (
        "AsyncChannelClientHttp_Service.wsdl",
        "AsyncChannel/v10/Interfaces/AsyncChannelClientHttp_Service.wsdl",
        {"sendMessage", "changeMassageStatusNotification"},
        "http://localhost:8081/push/",
    ),
}


def xs(tag: str) -> str:
    return f"{{{XS}}}{tag}"


def is_relative_location(loc: str) -> bool:
    return not urlparse(loc).scheme and not loc.startswith("/")


def qname_of(node: etree._Element, value: str) -> str:
    """Resolve a prefixed QName attribute value in the scope of `node` to Clark notation."""
    prefix, _, local = value.strip().rpartition(":")
    ns = node.nsmap.get(prefix or None)
    if ns is None and prefix:
        raise ValueError(f"unbound prefix {prefix!r} in {value!r} (line {node.sourceline})")
    return f"{{{ns}}}{local}" if ns else local


# ---------------------------------------------------------------------------
# XSD expander
# ---------------------------------------------------------------------------


class SchemaSet:
    """A set of schema documents, loaded from the given roots by following every
    xs:include / xs:import schemaLocation (each location, not just the first per
    namespace as libxml2 does). `overrides` maps a path to replacement bytes
    (used to prove the comparison can fail)."""

    def __init__(self, roots, overrides=None):
        self.overrides = {Path(p).resolve(): b for p, b in (overrides or {}).items()}
        self.docs: dict[Path, etree._Element] = {}
        self.elements: dict[str, tuple] = {}
        self.complex_types: dict[str, tuple] = {}
        self.simple_types: dict[str, tuple] = {}
        for r in roots:
            self._load(Path(r).resolve())

    def _parse(self, path: Path) -> etree._Element:
        if path in self.overrides:
            return etree.fromstring(self.overrides[path], base_url=str(path))
        return etree.parse(str(path)).getroot()

    def _load(self, path: Path) -> str | None:
        if path in self.docs:
            return self.docs[path].get("targetNamespace")
        assert path.is_file(), f"schemaLocation does not resolve: {path}"
        root = self._parse(path)
        assert root.tag == xs("schema"), f"{path} is not a schema document"
        self.docs[path] = root
        tns = root.get("targetNamespace")
        for child in root:
            if not isinstance(child.tag, str) or child.tag == xs("annotation"):
                continue
            tag = etree.QName(child).localname
            if tag in ("include", "import"):
                loc = child.get("schemaLocation")
                assert loc, f"{path}: {tag} without schemaLocation"
                got = self._load((path.parent / loc).resolve())
                want = tns if tag == "include" else child.get("namespace")
                assert got == want, f"{path}: {tag} of {loc} has targetNamespace {got!r}, expected {want!r}"
            elif tag in ("element", "complexType", "simpleType"):
                table = {"element": self.elements, "complexType": self.complex_types, "simpleType": self.simple_types}[tag]
                key = f"{{{tns}}}{child.get('name')}" if tns else child.get("name")
                if key in table and table[key][0] is not child:
                    raise AssertionError(f"{key} declared twice ({table[key][2]} and {path})")
                table[key] = (child, root, path)
            else:
                raise NotImplementedError(f"{path}: top-level xs:{tag} is not handled by the expander")
        return tns

    # -- expansion ---------------------------------------------------------

    def global_elements(self) -> dict[str, tuple]:
        return {q: self.expand_element(decl, schema, True, ()) for q, (decl, schema, _) in self.elements.items()}

    def global_type_names(self) -> set[str]:
        return set(self.complex_types) | set(self.simple_types)

    def expand_element(self, decl, schema, is_global, stack):
        min_occ = int(decl.get("minOccurs", "1"))
        max_raw = decl.get("maxOccurs", "1")
        max_occ = max_raw if max_raw == "unbounded" else int(max_raw)
        if decl.get("ref"):
            ref = qname_of(decl, decl.get("ref"))
            tdecl, tschema, _ = self.elements[ref]
            name, _, _, nillable, extra, tdesc = self.expand_element(tdecl, tschema, True, stack)
            return (name, min_occ, max_occ, nillable, extra, tdesc)
        tns = schema.get("targetNamespace")
        if is_global:
            qualified = True
        else:
            form = decl.get("form") or schema.get("elementFormDefault", "unqualified")
            qualified = form == "qualified"
        name = f"{{{tns}}}{decl.get('name')}" if (qualified and tns) else decl.get("name")
        nillable = decl.get("nillable", "false") in ("true", "1")
        extra = tuple((a, decl.get(a)) for a in ("default", "fixed", "abstract", "substitutionGroup", "block", "final") if decl.get(a) is not None)
        if decl.get("type"):
            tdesc = self.describe_type(qname_of(decl, decl.get("type")), stack)
        else:
            inline = [c for c in decl if isinstance(c.tag, str) and c.tag in (xs("complexType"), xs("simpleType"))]
            if not inline:
                tdesc = ("builtin", f"{{{XS}}}anyType")
            elif inline[0].tag == xs("simpleType"):
                tdesc = self.describe_simple(inline[0], None, stack)
            else:
                tdesc = self.describe_complex(inline[0], schema, None, stack)
        return (name, min_occ, max_occ, nillable, extra, tdesc)

    def describe_type(self, qname, stack):
        if qname.startswith(f"{{{XS}}}"):
            return ("builtin", qname)
        if qname in self.simple_types:
            decl, _, _ = self.simple_types[qname]
            return self.describe_simple(decl, qname, stack)
        if qname in self.complex_types:
            if qname in stack:
                return ("complex", qname, "<recursion>")
            decl, schema, _ = self.complex_types[qname]
            return self.describe_complex(decl, schema, qname, stack + (qname,))
        raise KeyError(f"type {qname} does not resolve")

    def describe_simple(self, decl, name, stack):
        restr = decl.find(xs("restriction"))
        if restr is None:
            raise NotImplementedError(f"simpleType {name}: only xs:restriction is handled")
        base = self.describe_type(qname_of(restr, restr.get("base")), stack)
        facets, enums = [], []
        for f in restr:
            if not isinstance(f.tag, str) or f.tag == xs("annotation"):
                continue
            local = etree.QName(f).localname
            if local == "enumeration":
                enums.append(f.get("value"))
            else:
                facets.append((local, f.get("value")))
        return ("simple", name, base, tuple(sorted(facets)), tuple(enums))

    def describe_complex(self, decl, schema, name, stack):
        content, attrs = None, []
        for c in decl:
            if not isinstance(c.tag, str) or c.tag == xs("annotation"):
                continue
            local = etree.QName(c).localname
            if local in ("sequence", "choice", "all"):
                content = self.describe_group(c, schema, stack)
            elif local == "attribute":
                attrs.append((c.get("name") or c.get("ref"), c.get("type"), c.get("use", "optional")))
            else:
                raise NotImplementedError(f"complexType {name}: xs:{local} is not handled by the expander")
        mixed = decl.get("mixed", "false") in ("true", "1")
        return ("complex", name, mixed, content, tuple(attrs))

    def describe_group(self, group, schema, stack):
        min_occ = int(group.get("minOccurs", "1"))
        max_raw = group.get("maxOccurs", "1")
        particles = []
        for c in group:
            if not isinstance(c.tag, str) or c.tag == xs("annotation"):
                continue
            local = etree.QName(c).localname
            if local == "element":
                particles.append(self.expand_element(c, schema, False, stack))
            elif local in ("sequence", "choice", "all"):
                particles.append(self.describe_group(c, schema, stack))
            elif local == "any":
                particles.append(("any", c.get("namespace", "##any"), c.get("processContents", "strict"), c.get("minOccurs", "1"), c.get("maxOccurs", "1")))
            else:
                raise NotImplementedError(f"xs:{local} inside a model group")
        return (etree.QName(group).localname, min_occ, max_raw, tuple(particles))


def render(node, indent="") -> list[str]:
    """Readable lines for a failure diff."""
    if node and node[0] in ("sequence", "choice", "all"):
        kind, mn, mx, parts = node
        lines = [f"{indent}<{kind} {mn}..{mx}>"]
        for p in parts:
            lines += render(p, indent + "  ")
        return lines
    if node and node[0] == "any":
        return [f"{indent}{node}"]
    name, mn, mx, nil, extra, t = node
    head = f"{indent}{name} [{mn}..{mx}]{' nillable' if nil else ''}{' ' + str(extra) if extra else ''}"
    if t[0] == "builtin":
        return [f"{head} : {t[1]}"]
    if t[0] == "simple":
        return [f"{head} : {t}"]
    if len(t) == 3:  # recursion marker
        return [f"{head} : {t[1]} {t[2]}"]
    _, tname, mixed, content, attrs = t
    lines = [f"{head} : complex {tname or '(anonymous)'}{' mixed' if mixed else ''}{' attrs=' + str(attrs) if attrs else ''}"]
    if content:
        lines += render(content, indent + "  ")
    return lines


def assert_same_expansion(ours: dict, real: dict, what: str):
    assert set(ours) == set(real), f"{what}: global element sets differ: only ours={sorted(set(ours) - set(real))}, only real={sorted(set(real) - set(ours))}"
    bad = [q for q in sorted(real) if ours[q] != real[q]]
    if bad:
        diff = []
        for q in bad:
            diff += list(difflib.unified_diff(render(real[q]), render(ours[q]), f"real {q}", f"ours {q}", lineterm="", n=1))
        pytest.fail(f"{what}: {len(bad)} global element(s) differ:\n" + "\n".join(diff))


@functools.lru_cache(maxsize=None)
def canonical_set() -> SchemaSet:
    roots = []
    for folder in ("common/v10/Types", "SyncChannel/v10/Types", "AsyncChannel/v10/Types"):
        roots += sorted((CANON / folder).glob("*.xsd"))
    assert len(roots) >= 30, roots
    return SchemaSet(roots)


@functools.lru_cache(maxsize=None)
def our_set() -> SchemaSet:
    return SchemaSet([XSD_DIR / f for f in OUR_XSD])


# ---------------------------------------------------------------------------
# 1. our XSDs compile, each on its own
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fname", sorted(OUR_XSD))
def test_our_xsd_compiles_alone(fname):
    path = XSD_DIR / fname
    tree = etree.parse(str(path))
    root = tree.getroot()
    assert root.get("targetNamespace") == OUR_XSD[fname]
    # unqualified locals: nothing may switch qualification on
    assert root.get("elementFormDefault") is None and root.get("attributeFormDefault") is None
    assert not root.xpath("//xs:element[@form] | //xs:attribute[@form]", namespaces={"xs": XS})
    for imp in root.iter(xs("import"), xs("include")):
        loc = imp.get("schemaLocation")
        assert loc and is_relative_location(loc), f"{fname}: schemaLocation must be relative: {loc!r}"
        assert (XSD_DIR / loc).resolve().parent == XSD_DIR.resolve(), f"{fname}: {loc} is not a sibling"
        assert OUR_XSD.get(loc) == imp.get("namespace"), f"{fname}: {loc} does not hold {imp.get('namespace')}"
    etree.XMLSchema(tree)  # raises XMLSchemaParseError on failure


# ---------------------------------------------------------------------------
# 2. structural comparison with the real set
# ---------------------------------------------------------------------------


def test_structure_matches_canonical_set():
    ours, real = our_set(), canonical_set()
    assert {d.get("targetNamespace") for d in ours.docs.values()} == set(OUR_XSD.values())
    assert {d.get("targetNamespace") for d in real.docs.values()} == set(OUR_XSD.values())
    assert_same_expansion(ours.global_elements(), real.global_elements(), "ours vs aarystanovv")
    assert ours.global_type_names() == real.global_type_names()


def test_flattened_oracle_matches_canonical_set():
    """The flattened copy used as validation oracle below must be the same contract."""
    flat = SchemaSet([FLAT_HUB])
    assert_same_expansion(flat.global_elements(), canonical_set().global_elements(), "flattened vs aarystanovv")


def test_expansion_spot_checks():
    """A few facts the spec relies on, so that an expander bug hiding everything is caught."""
    g = our_set().global_elements()
    send = g[f"{{{NS_SYNC}}}SendMessage"]
    request = send[5][3][3][0]
    assert request[:4] == ("request", 1, 1, True)
    info = request[5][3][3][0]
    assert [p[0] for p in info[5][3][3]] == [
        "messageId", "correlationId", "serviceId", "messageDate", "routeId", "sender", "properties", "sessionId"]
    data = request[5][3][3][1][5][3][3][0]
    assert data[:3] == ("data", 0, 1)
    fault = g[f"{{{NS_SYNC}}}SendMessageFault1_SendMessageFault"]
    assert fault[3] is True and fault[5][1] == f"{{{NS_COMMON}}}ErrorInfo"
    sub = fault[5][3][3][4]
    assert sub[0] == "subError" and sub[5] == ("complex", f"{{{NS_COMMON}}}ErrorInfo", "<recursion>")


MUTATIONS = [
    ("sync-v10-request.xsd", '<xs:element name="data" type="xs:anyType" minOccurs="0"/>', '<xs:element name="data" type="xs:anyType"/>'),
    ("common-v10.xsd", 'targetNamespace="http://bip.bee.kz/common/v10/Types">', 'targetNamespace="http://bip.bee.kz/common/v10/Types" elementFormDefault="qualified">'),
    ("common-v10.xsd", '"MESSAGE_NOT_ACCTEPTED"', '"MESSAGE_NOT_ACCEPTED"'),
    ("common-v10.xsd", '<xs:maxLength value="30"/>', '<xs:maxLength value="31"/>'),
    ("sync-v10.xsd", 'name="response" type="sr:SyncSendMessageResponse" nillable="true"', 'name="response" type="sr:SyncSendMessageResponse"'),
    ("async-v10-itypes.xsd",
     '<xs:element name="sender" type="c:SenderInfo"/>\n      <xs:element name="properties" type="c:Property" minOccurs="0" maxOccurs="unbounded"/>\n      <xs:element name="sessionId" type="c:guid" minOccurs="0"/>',
     '<xs:element name="sender" type="c:SenderInfo"/>\n      <xs:element name="sessionId" type="c:guid" minOccurs="0"/>\n      <xs:element name="properties" type="c:Property" minOccurs="0" maxOccurs="unbounded"/>'),
    ("async-v10-client.xsd", 'name="changeMassageStatusNotificationResponse"', 'name="changeMessageStatusNotificationResponse"'),
]


@pytest.mark.parametrize("fname,old,new", MUTATIONS, ids=[f"{m[0]}#{i}" for i, m in enumerate(MUTATIONS)])
def test_comparison_detects_mutation(fname, old, new):
    text = (XSD_DIR / fname).read_text(encoding="utf-8")
    assert text.count(old) == 1, f"mutation anchor not found once in {fname}: {old!r}"
    mutated = SchemaSet([XSD_DIR / f for f in OUR_XSD], overrides={XSD_DIR / fname: text.replace(old, new).encode()})
    real = canonical_set()
    same = mutated.global_elements() == real.global_elements() and mutated.global_type_names() == real.global_type_names()
    assert not same, "the structural comparison did not notice the mutation"


# ---------------------------------------------------------------------------
# 3. WSDL comparison
# ---------------------------------------------------------------------------


def load_wsdl(path: Path) -> dict:
    """Collect a WSDL 1.1 description across wsdl:import, keyed by QNames."""
    d = {"tns": set(), "imports": set(), "type_imports": set(), "messages": {}, "portTypes": {}, "bindings": {}, "services": {}}
    seen: set[Path] = set()

    def q(node, value):
        return qname_of(node, value) if value else None

    def visit(p: Path) -> str:
        p = p.resolve()
        root = etree.parse(str(p)).getroot()
        tns = root.get("targetNamespace")
        if p in seen:
            return tns
        seen.add(p)
        assert root.tag == f"{{{WSDL_NS}}}definitions", p
        d["tns"].add(tns)
        for imp in root.findall(f"{{{WSDL_NS}}}import"):
            got = visit(p.parent / imp.get("location"))
            assert got == imp.get("namespace"), f"{p}: wsdl:import {imp.get('location')} holds {got}"
            d["imports"].add((tns, imp.get("namespace"), is_relative_location(imp.get("location"))))
        for schema in root.iterfind(f"{{{WSDL_NS}}}types/{{{XS}}}schema"):
            for imp in schema.iterfind(xs("import")):
                loc = imp.get("schemaLocation")
                target = (p.parent / loc).resolve()
                assert target.is_file(), f"{p}: {loc} does not resolve"
                assert etree.parse(str(target)).getroot().get("targetNamespace") == imp.get("namespace")
                d["type_imports"].add((schema.get("targetNamespace"), imp.get("namespace"), is_relative_location(loc)))
        for m in root.iterfind(f"{{{WSDL_NS}}}message"):
            parts = tuple((pt.get("name"), q(pt, pt.get("element")), q(pt, pt.get("type"))) for pt in m.iterfind(f"{{{WSDL_NS}}}part"))
            d["messages"][f"{{{tns}}}{m.get('name')}"] = parts
        for pt in root.iterfind(f"{{{WSDL_NS}}}portType"):
            ops = {}
            for op in pt.iterfind(f"{{{WSDL_NS}}}operation"):
                io = {k: tuple((e.get("name"), q(e, e.get("message"))) for e in op.iterfind(f"{{{WSDL_NS}}}{k}")) for k in ("input", "output")}
                faults = tuple(sorted((f.get("name"), q(f, f.get("message"))) for f in op.iterfind(f"{{{WSDL_NS}}}fault")))
                ops[op.get("name")] = (io["input"], io["output"], faults)
            d["portTypes"][f"{{{tns}}}{pt.get('name')}"] = ops
        for b in root.iterfind(f"{{{WSDL_NS}}}binding"):
            sb = b.find(f"{{{SOAP11_BIND}}}binding")
            assert sb is not None, f"{p}: binding {b.get('name')} is not a SOAP 1.1 binding"
            ops = {}
            for op in b.iterfind(f"{{{WSDL_NS}}}operation"):
                so = op.find(f"{{{SOAP11_BIND}}}operation")

                def body(kind, op=op):
                    e = op.find(f"{{{WSDL_NS}}}{kind}")
                    sbody = e.find(f"{{{SOAP11_BIND}}}body")
                    return (e.get("name"), sbody.get("use"), sbody.get("namespace"), sbody.get("parts"))

                faults = tuple(sorted(
                    (f.get("name"), f.find(f"{{{SOAP11_BIND}}}fault").get("name"), f.find(f"{{{SOAP11_BIND}}}fault").get("use"))
                    for f in op.iterfind(f"{{{WSDL_NS}}}fault")))
                ops[op.get("name")] = (so.get("soapAction"), so.get("style"), body("input"), body("output"), faults)
            d["bindings"][f"{{{tns}}}{b.get('name')}"] = (q(b, b.get("type")), sb.get("style"), sb.get("transport"), ops)
        for s in root.iterfind(f"{{{WSDL_NS}}}service"):
            ports = {}
            for port in s.iterfind(f"{{{WSDL_NS}}}port"):
                addr = [etree.QName(c).text for c in port if isinstance(c.tag, str) and c.tag != f"{{{WSDL_NS}}}documentation"]
                ports[port.get("name")] = (q(port, port.get("binding")), tuple(addr))
            d["services"][f"{{{tns}}}{s.get('name')}"] = ports
        return tns

    visit(path)
    return d


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_wsdl_matches_canonical(service):
    ours_file, real_file, expected_ops, _ = SERVICES[service]
    ours, real = load_wsdl(WSDL_DIR / ours_file), load_wsdl(CANON / real_file)
    assert ours["tns"] == real["tns"], f"{service}: target namespaces differ"
    for key in ("messages", "portTypes", "bindings", "services"):
        assert set(ours[key]) == set(real[key]), f"{service}: {key} names differ"
        for name in sorted(real[key]):
            assert ours[key][name] == real[key][name], f"{service}: {key} {name} differs"
    # imports: same namespaces; ours must use relative locations (real ones happen to be relative too)
    strip = lambda s: {t[:2] for t in s}  # noqa: E731
    assert strip(ours["imports"]) == strip(real["imports"])
    assert strip(ours["type_imports"]) == strip(real["type_imports"])
    assert all(t[2] for t in ours["imports"] | ours["type_imports"]), "our WSDL locations must be relative"
    # the contract itself, spelled out
    (binding,) = ours["bindings"].values()
    assert binding[1:3] == ("document", HTTP_TRANSPORT)
    assert set(binding[3]) == expected_ops
    for op, (action, _style, inp, out, faults) in binding[3].items():
        assert action == "", op
        assert inp[1] == out[1] == "literal" and faults and all(f[2] == "literal" for f in faults), op
    (portType,) = ours["portTypes"].values()
    assert set(portType) == expected_ops


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_our_soap_address(service):
    ours_file, _, _, address = SERVICES[service]
    root = etree.parse(str(WSDL_DIR / ours_file)).getroot()
    locs = [a.get("location") for a in root.iter(f"{{{SOAP11_BIND}}}address")]
    assert locs == [address]


def test_wsdl_message_elements_exist_in_our_schemas():
    elements = set(our_set().elements)
    for ours_file, *_ in SERVICES.values():
        for parts in load_wsdl(WSDL_DIR / ours_file)["messages"].values():
            for name, element, type_ in parts:
                assert type_ is None and element in elements, (ours_file, name, element)


# ---------------------------------------------------------------------------
# 4. zeep builds clients from our files, from disk only
# ---------------------------------------------------------------------------


def _offline_transport():
    import zeep

    class OfflineTransport(zeep.Transport):
        def _load_remote_data(self, url):  # pragma: no cover - must never run
            raise AssertionError(f"zeep tried to fetch {url} over the network")

        def post(self, address, message, headers):  # pragma: no cover
            raise AssertionError(f"zeep tried to POST to {address}")

    return OfflineTransport(cache=None)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_zeep_builds_client(service):
    import zeep

    ours_file, _, expected_ops, address = SERVICES[service]
    client = zeep.Client(str(WSDL_DIR / ours_file), transport=_offline_transport())
    ((svc_name, svc),) = client.wsdl.services.items()
    ((port_name, port),) = svc.ports.items()
    assert set(port.binding._operations) == expected_ops
    assert port.binding_options["address"] == address
    assert svc_name == {"sync": "ISyncChannelHttpService", "async": "AsyncChannelHttpService", "push": "AsyncChannelClientHttpService"}[service]
    for op in port.binding._operations.values():
        assert op.soapaction == ""


def test_zeep_sync_message_validates_against_both():
    """What zeep serialises from our WSDL is what both schema sets accept."""
    import zeep

    client = zeep.Client(str(WSDL_DIR / "SyncChannelHttp_Service.wsdl"), transport=_offline_transport())
    env = client.create_message(
        client.service, "SendMessage",
        request={
            "requestInfo": {
                "messageId": "m-1", "serviceId": "SVC", "messageDate": "2024-01-02T03:04:05+06:00",
                "sender": {"senderId": "me", "password": "pw"},
                "properties": [{"key": "k", "value": "v"}],
                "sessionId": "{f0774397-4fcd-484a-9434-f71535ee4326}",
            },
            "requestData": {},
        },
    )
    child = env.find(f"{{{SOAP_ENV}}}Body")[0]
    assert child.tag == f"{{{NS_SYNC}}}SendMessage"
    assert child[0].tag == "request"  # unqualified local
    assert is_valid(our_schema(), child) and is_valid(flat_schema(), child)


# ---------------------------------------------------------------------------
# 5. sample envelopes: ours and the flattened oracle agree
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def our_schema() -> etree.XMLSchema:
    imports = "".join(
        f'<xs:import namespace="{ns}" schemaLocation="{(XSD_DIR / f).resolve().as_uri()}"/>' for f, ns in OUR_XSD.items())
    hub = etree.fromstring(f'<xs:schema xmlns:xs="{XS}" targetNamespace="urn:contract-test:hub">{imports}</xs:schema>')
    return etree.XMLSchema(hub)


@functools.lru_cache(maxsize=None)
def flat_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(FLAT_HUB)))


def is_valid(schema: etree.XMLSchema, element) -> bool:
    return schema.validate(etree.ElementTree(copy.deepcopy(element)))


def body_child(sample: str):
    root = etree.fromstring((SAMPLES / sample).read_bytes())
    body = root.find(f"{{{SOAP_ENV}}}Body")
    return copy.deepcopy([c for c in body if isinstance(c.tag, str)][0])


REQ = "nitec-sample-sync-request-gost.xml"
RESP = "nitec-sample-sync-response-gost.xml"
GUID = "{f0774397-4fcd-484a-9434-f71535ee4326}"


def _el(tag, text=None, *children):
    e = etree.Element(tag)
    e.text = text
    e.extend(children)
    return e


def _find(root, path):
    found = root.find(path)
    assert found is not None, path
    return found


def m_none(r):
    pass


def m_session_before_sender(r):
    _find(r, "request/requestInfo/sender").addprevious(_el("sessionId", GUID))


def m_session_last(r):
    _find(r, "request/requestInfo").append(_el("sessionId", GUID))


def m_session_no_braces(r):
    _find(r, "request/requestInfo").append(_el("sessionId", GUID.strip("{}")))


def m_drop_message_date(r):
    e = _find(r, "request/requestInfo/messageDate")
    e.getparent().remove(e)


def m_property(keylen):
    def m(r):
        _find(r, "request/requestInfo/sender").addnext(_el("properties", None, _el("key", "k" * keylen), _el("value", "v")))
    m.__name__ = f"m_property_key_{keylen}"
    return m


def m_drop_request_data(r):
    e = _find(r, "request/requestData/data")
    e.getparent().remove(e)


def m_qualified_request(r):
    _find(r, "request").tag = f"{{{NS_SYNC}}}request"


def m_wrong_root_ns(r):
    r.tag = f"{{{NS_ASYNC}}}SendMessage"


def m_status_before_date(r):
    info = _find(r, "response/responseInfo")
    _find(info, "responseDate").addprevious(_find(info, "status"))


def m_drop_response_date(r):
    e = _find(r, "response/responseInfo/responseDate")
    e.getparent().remove(e)


def m_status_message(length):
    def m(r):
        _find(r, "response/responseInfo/status/message").text = "x" * length
    m.__name__ = f"m_status_message_{length}"
    return m


def m_response_session_last(r):
    _find(r, "response/responseInfo").append(_el("sessionId", GUID))


SAMPLE_CASES = [
    (REQ, m_none, True),
    (REQ, m_session_before_sender, False),
    (REQ, m_session_last, True),
    (REQ, m_session_no_braces, False),
    (REQ, m_drop_message_date, False),
    (REQ, m_property(30), True),
    (REQ, m_property(31), False),
    (REQ, m_drop_request_data, True),  # canonical set: requestData/data is minOccurs=0
    (REQ, m_qualified_request, False),  # local elements are unqualified
    (REQ, m_wrong_root_ns, False),
    (RESP, m_none, True),
    (RESP, m_status_before_date, False),
    (RESP, m_drop_response_date, False),
    (RESP, m_status_message(250), True),
    (RESP, m_status_message(251), False),
    (RESP, m_response_session_last, True),
]


@pytest.mark.parametrize("sample,mutate,expected", SAMPLE_CASES,
                         ids=[f"{s.split('-')[3]}-{m.__name__[2:]}" for s, m, _ in SAMPLE_CASES])
def test_sample_body_validation(sample, mutate, expected):
    child = body_child(sample)
    mutate(child)
    assert is_valid(our_schema(), child) is expected, our_schema().error_log
    assert is_valid(flat_schema(), child) is expected, flat_schema().error_log


def _async_delivery_notification(receive_status):
    return _el(f"{{{NS_ASYNC}}}sendDeliveryNotification", None, _el("request", None,
        _el("notification", None,
            _el("messageId", "m-1"), _el("serviceId", "SVC"), _el("notificationDate", "2024-01-02T03:04:05Z"),
            _el("deliveryStatus", None, _el("receiveStatus", receive_status), _el("statusDate", "2024-01-02T03:04:05Z"),
                _el("resendMessage", "NOT_RESEND"))),
        _el("requestDate", "2024-01-02T03:04:05Z")))


def _push_status(root_ns, root_name):
    return _el(f"{{{root_ns}}}{root_name}", None, _el("request", None,
        _el("notification", None,
            _el("notificationId", "n-1"), _el("messageId", "m-1"), _el("notificationDate", "2024-01-02T03:04:05Z"),
            _el("messageState", "DELIVERED"),
            _el("status", None, _el("statusCode", "0"), _el("statusMessage", "ok"), _el("statusDate", "2024-01-02T03:04:05Z")),
            _el("error", None, _el("errorCode", "E"), _el("errorMessage", "m"), _el("errorDate", "2024-01-02T03:04:05Z"),
                _el("subError", None, _el("errorCode", "E2"), _el("errorMessage", "m2"), _el("errorDate", "2024-01-02T03:04:05Z")))),
        _el("requestDate", "2024-01-02T03:04:05Z")))


CONSTRUCTED = [
    ("delivery-typo-accepted", lambda: _async_delivery_notification("MESSAGE_NOT_ACCTEPTED"), True),
    ("delivery-corrected-spelling-rejected", lambda: _async_delivery_notification("MESSAGE_NOT_ACCEPTED"), False),
    ("push-Massage-accepted", lambda: _push_status(NS_ASYNC_CLIENT, "changeMassageStatusNotification"), True),
    ("push-Message-rejected", lambda: _push_status(NS_ASYNC_CLIENT, "changeMessageStatusNotification"), False),
    ("push-wrong-namespace-rejected", lambda: _push_status(NS_ASYNC, "changeMassageStatusNotification"), False),
    ("fault-nil", lambda: etree.fromstring(
        f'<f:getMessagesFault1_getMessagesFault xmlns:f="{NS_ASYNC}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"/>'), True),
]


@pytest.mark.parametrize("name,build,expected", CONSTRUCTED, ids=[c[0] for c in CONSTRUCTED])
def test_constructed_instances(name, build, expected):
    element = build()
    assert is_valid(our_schema(), element) is expected, our_schema().error_log
    assert is_valid(flat_schema(), element) is expected, flat_schema().error_log
