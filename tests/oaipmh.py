"""The OAI-PMH 2.0 schema's rules for each verb, and those of oai_dc, written from the protocol
specification (sections 2.5 to 4 and the schema it publishes): no PyPI package we could find ships
OAI-PMH.xsd (the OAI-PMH providers, harvesters and Django apps tried ship at most oai_dc.xsd), and
nothing is fetched. Each check names the rule it enforces."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from lxml import etree

OAI = "http://www.openarchives.org/OAI/2.0/"
OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC = "http://purl.org/dc/elements/1.1/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ERROR_CODES = {"cannotDisseminateFormat", "idDoesNotExist", "badArgument", "badVerb", "noMetadataFormats",
               "noRecordsMatch", "badResumptionToken", "noSetHierarchy"}
REQUEST_ATTRIBUTES = {"verb", "identifier", "metadataPrefix", "from", "until", "set", "resumptionToken"}
VERBS = ("Identify", "ListMetadataFormats", "ListSets", "GetRecord", "ListIdentifiers", "ListRecords")
UTC_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
UTC_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SET_SPEC = re.compile(r"^([A-Za-z0-9\-_.!~*'()])+(:[A-Za-z0-9\-_.!~*'()]+)*$")
PREFIX = re.compile(r"^[A-Za-z0-9\-_.!~*'()]+$")
EMAIL = re.compile(r"^\S+@(\S+\.\S+|\S+)$")
DC_ELEMENTS = {"title", "creator", "subject", "description", "publisher", "contributor", "date", "type", "format",
               "identifier", "source", "language", "relation", "coverage", "rights"}


def q(name: str) -> str:
    return f"{{{OAI}}}{name}"


def local(element: etree._Element) -> str:
    assert element.tag.startswith(f"{{{OAI}}}"), f"{element.tag} is not in the OAI-PMH namespace"
    return element.tag[len(OAI) + 2:]


def children(element: etree._Element) -> list[etree._Element]:
    """Element children (no comments), each checked to be in the OAI-PMH namespace."""
    found = [child for child in element if isinstance(child.tag, str)]
    for child in found:
        local(child)
    return found


def text_of(element: etree._Element) -> str:
    assert len(element) == 0, f"{element.tag} holds elements where the schema wants text"
    return element.text or ""


def uri(value: str, what: str) -> None:
    parts = urlsplit(value)
    assert parts.scheme and (parts.netloc or parts.path), f"{what} {value!r} is not a URI"


def sequence(element: etree._Element, spec: list[tuple[str, int, int | None]]) -> dict[str, list[etree._Element]]:
    """Check that ELEMENT's children follow SPEC, (name, min, max) in order; return them by name."""
    found = children(element)
    by_name: dict[str, list[etree._Element]] = {}
    position = 0
    for name, least, most in spec:
        run = []
        while position < len(found) and local(found[position]) == name:
            run.append(found[position])
            position += 1
        assert len(run) >= least, f"{local(element)} needs at least {least} {name}"
        assert most is None or len(run) <= most, f"{local(element)} allows at most {most} {name}"
        by_name[name] = run
    assert position == len(found), f"{local(element)}: unexpected {local(found[position])} (order or name)"
    return by_name


def check_response(body: bytes, granularity: str = "seconds") -> etree._Element:
    """Fail unless BODY is an OAI-PMH response the schema allows for its verb; return the root."""
    root = etree.fromstring(body)
    assert root.tag == q("OAI-PMH"), f"the root is {root.tag}"
    assert OAI in root.get(f"{{{XSI}}}schemaLocation", ""), "the root must say where the OAI-PMH schema is"
    parts = children(root)
    assert [local(p) for p in parts[:2]] == ["responseDate", "request"], "responseDate and request come first"
    assert UTC_SECONDS.match(text_of(parts[0])), "responseDate is a UTC time with seconds"
    request = parts[1]
    uri(text_of(request), "the request's base URL")
    assert set(request.attrib) <= REQUEST_ATTRIBUTES, f"request attributes {sorted(request.attrib)}"
    rest = parts[2:]
    assert rest, "a response holds either errors or the verb's element"
    if local(rest[0]) == "error":
        for error in rest:
            assert local(error) == "error", "errors are not mixed with a verb's element"
            assert error.get("code") in ERROR_CODES, f"error code {error.get('code')}"
        if {e.get("code") for e in rest} & {"badVerb", "badArgument"}:
            assert not request.attrib, "after badVerb or badArgument the request element has no attributes"
        return root
    assert len(rest) == 1, "one element for the verb"
    verb = local(rest[0])
    assert verb in VERBS and request.get("verb") == verb, f"{verb} answers request verb {request.get('verb')}"
    CHECKS[verb](rest[0], granularity)
    return root


def datestamp(element: etree._Element, granularity: str) -> str:
    value = text_of(element)
    pattern = UTC_SECONDS if granularity == "seconds" else UTC_DAY
    assert pattern.match(value), f"datestamp {value!r} is not at the repository's granularity"
    return value


def _identify(element: etree._Element, granularity: str) -> None:
    parts = sequence(element, [("repositoryName", 1, 1), ("baseURL", 1, 1), ("protocolVersion", 1, 1),
                               ("adminEmail", 1, None), ("earliestDatestamp", 1, 1), ("deletedRecord", 1, 1),
                               ("granularity", 1, 1), ("compression", 0, None), ("description", 0, None)])
    uri(text_of(parts["baseURL"][0]), "baseURL")
    assert text_of(parts["protocolVersion"][0]) == "2.0"
    assert all(EMAIL.match(text_of(e)) for e in parts["adminEmail"]), "adminEmail is an e-mail address"
    assert text_of(parts["deletedRecord"][0]) in ("no", "persistent", "transient")
    assert text_of(parts["granularity"][0]) in ("YYYY-MM-DD", "YYYY-MM-DDThh:mm:ssZ")
    datestamp(parts["earliestDatestamp"][0], granularity)


def _formats(element: etree._Element, granularity: str) -> None:
    for entry in sequence(element, [("metadataFormat", 1, None)])["metadataFormat"]:
        parts = sequence(entry, [("metadataPrefix", 1, 1), ("schema", 1, 1), ("metadataNamespace", 1, 1)])
        assert PREFIX.match(text_of(parts["metadataPrefix"][0]))
        uri(text_of(parts["schema"][0]), "schema")
        uri(text_of(parts["metadataNamespace"][0]), "metadataNamespace")


def _sets(element: etree._Element, granularity: str) -> None:
    parts = sequence(element, [("set", 1, None), ("resumptionToken", 0, 1)])
    for entry in parts["set"]:
        fields = sequence(entry, [("setSpec", 1, 1), ("setName", 1, 1), ("setDescription", 0, None)])
        assert SET_SPEC.match(text_of(fields["setSpec"][0])), "setSpec syntax"
    _token(parts["resumptionToken"])


def header(element: etree._Element, granularity: str) -> None:
    assert local(element) == "header"
    assert set(element.attrib) <= {"status"} and element.get("status") in (None, "deleted")
    parts = sequence(element, [("identifier", 1, 1), ("datestamp", 1, 1), ("setSpec", 0, None)])
    uri(text_of(parts["identifier"][0]), "identifier")
    datestamp(parts["datestamp"][0], granularity)
    assert all(SET_SPEC.match(text_of(s)) for s in parts["setSpec"]), "setSpec syntax"


def record(element: etree._Element, granularity: str) -> None:
    parts = sequence(element, [("header", 1, 1), ("metadata", 0, 1), ("about", 0, None)])
    header(parts["header"][0], granularity)
    deleted = parts["header"][0].get("status") == "deleted"
    assert bool(parts["metadata"]) != deleted, "a record has metadata exactly when it is not deleted"
    for metadata in parts["metadata"]:
        inside = [child for child in metadata if isinstance(child.tag, str)]
        assert len(inside) == 1, "metadata holds one element (of the format's own namespace)"
        assert not inside[0].tag.startswith(f"{{{OAI}}}")


def _get_record(element: etree._Element, granularity: str) -> None:
    record(sequence(element, [("record", 1, 1)])["record"][0], granularity)


def _identifiers(element: etree._Element, granularity: str) -> None:
    parts = sequence(element, [("header", 1, None), ("resumptionToken", 0, 1)])
    for entry in parts["header"]:
        header(entry, granularity)
    _token(parts["resumptionToken"])


def _records(element: etree._Element, granularity: str) -> None:
    parts = sequence(element, [("record", 1, None), ("resumptionToken", 0, 1)])
    for entry in parts["record"]:
        record(entry, granularity)
    _token(parts["resumptionToken"])


def _token(tokens: list[etree._Element]) -> None:
    for token in tokens:
        assert set(token.attrib) <= {"expirationDate", "completeListSize", "cursor"}
        assert int(token.get("completeListSize", "1")) >= 1, "completeListSize is a positive integer"
        assert int(token.get("cursor", "0")) >= 0, "cursor is a non-negative integer"
        text_of(token)


CHECKS = {"Identify": _identify, "ListMetadataFormats": _formats, "ListSets": _sets, "GetRecord": _get_record,
          "ListIdentifiers": _identifiers, "ListRecords": _records}


def check_oai_dc(element: etree._Element) -> None:
    """Fail unless ELEMENT is an oai_dc:dc record: Dublin Core's fifteen elements, text only."""
    assert element.tag == f"{{{OAI_DC}}}dc", element.tag
    for child in element:
        assert child.tag.startswith(f"{{{DC}}}") and child.tag[len(DC) + 2:] in DC_ELEMENTS, child.tag
        assert len(child) == 0 and (child.text or "").strip(), f"{child.tag} holds non-empty text"


def error_code(body: bytes) -> str | None:
    """The code of the (first) error in an OAI-PMH response, or None."""
    error = check_response(body).find(q("error"))
    return None if error is None else error.get("code")
