"""OAI-PMH 2.0 over the records enricher.harvest keeps: the six verbs, ``oai_dc`` and ``edm``,
sets, seconds granularity, persistent deletes and every error code where it applies.

Lists are paged by a resumption token that holds a cursor on the harvest order (the position of the
last record sent), not an offset, and the position the order had when the list began: a resumed list
gives the records of that moment not sent yet, whatever was added since; a record that changes during
a harvest leaves that list and is found by the next incremental harvest (``from`` the first
response's date). Should every record still to send have changed, the list takes in the changed ones
rather than end early. Tokens never expire. ``completeListSize`` and ``cursor`` count the list as it
began. A response holds at most ``max_records`` records, headers or sets.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from lxml import etree

from .clock import now
from .harvest import Catalogue
from .store import HarvestRecord, Store
from .urls import oai_url

OAI = "http://www.openarchives.org/OAI/2.0/"
OAI_SCHEMA = "http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MEDIA_TYPE = "text/xml; charset=utf-8"
GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"
FORMATS = {  # prefix -> (schema, namespace)
    "oai_dc": ("http://www.openarchives.org/OAI/2.0/oai_dc.xsd", "http://www.openarchives.org/OAI/2.0/oai_dc/"),
    "edm": ("http://www.europeana.eu/schemas/edm/EDM.xsd", "http://www.europeana.eu/schemas/edm/"),
}
LISTS = ("ListIdentifiers", "ListRecords")
VERBS = {  # verb -> (required arguments, optional arguments); a resumptionToken replaces both
    "Identify": ((), ()),
    "ListMetadataFormats": ((), ("identifier",)),
    "ListSets": ((), ()),
    "GetRecord": (("identifier", "metadataPrefix"), ()),
    "ListIdentifiers": (("metadataPrefix",), ("from", "until", "set")),
    "ListRecords": (("metadataPrefix",), ("from", "until", "set")),
}
RESUMABLE = ("ListSets", *LISTS)
SPLICE = "@@"  # around a record's number in its metadata element until the response is serialised
_PLACEHOLDER = re.compile(rb"<metadata>@@(\d+)@@</metadata>")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class OAIError(Exception):
    """An OAI-PMH error condition: CODE is the spec's (badArgument, idDoesNotExist ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Token:
    """Where a list stands: what it asks for, the position last sent, the position the harvest order
    had when the list began, how many were sent before and the list's size then."""

    verb: str
    prefix: str | None = None
    since: str | None = None
    until: str | None = None
    set_spec: str | None = None
    after: int = 0
    upto: int = 0
    cursor: int = 0
    total: int = 0
    last_set: str | None = None  # ListSets: the spec last sent

    def encode(self) -> str:
        """The token as harvesters see it: URL-safe and opaque."""
        data = {k: v for k, v in asdict(self).items() if v is not None}
        return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, verb: str) -> Token:
        """Read a token given with VERB. Raises OAIError badResumptionToken when it is not one of ours,
        or was issued for another verb."""
        try:
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            token = cls(**data)
            numbers = (token.after, token.upto, token.cursor, token.total)
            valid = all(isinstance(n, int) and n >= 0 for n in numbers) and token.verb in RESUMABLE and (
                token.verb == "ListSets" or token.prefix in FORMATS)
        except (ValueError, TypeError, binascii.Error):
            valid = False
        if not valid:
            raise OAIError("badResumptionToken", f"{text!r} is not a resumption token of this repository")
        if token.verb != verb:
            raise OAIError("badResumptionToken", f"the resumption token continues {token.verb}, not {verb}")
        return token


def parse_datestamp(text: str, name: str, end: bool) -> tuple[str, str]:
    """Return (UTC datestamp at seconds granularity, the granularity given) of argument NAME; a day
    stands for its first second (END: its last). Raises OAIError badArgument."""
    for pattern, granularity in (("%Y-%m-%dT%H:%M:%SZ", "seconds"), ("%Y-%m-%d", "day")):
        try:
            moment = datetime.strptime(text, pattern)
        except ValueError:
            continue
        if len(text) != (20 if granularity == "seconds" else 10):  # strptime takes 1-digit months
            break
        if granularity == "day":
            return moment.strftime("%Y-%m-%dT23:59:59Z" if end else "%Y-%m-%dT00:00:00Z"), granularity
        return text, granularity
    raise OAIError("badArgument", f"{name}={text!r} is not a date (YYYY-MM-DD) or a UTC time (YYYY-MM-DDThh:mm:ssZ)")


class _Reply:
    """A response being built: its tree, and the records it holds, serialised each on its own and
    spliced in at the end (moving a record's elements into the response's tree costs more than the
    record's own serialisation)."""

    def __init__(self, root: etree._Element):
        self.root, self.element = root, root
        self.records: list[bytes] = []

    def splice(self, record: etree._Element) -> str:
        """Keep RECORD for the response; return the placeholder its metadata element holds meanwhile."""
        self.records.append(etree.tostring(record, encoding="UTF-8"))
        return f"{SPLICE}{len(self.records) - 1}{SPLICE}"

    def serialise(self) -> bytes:
        body = etree.tostring(self.root, xml_declaration=True, encoding="UTF-8")
        if not self.records:
            return body
        return _PLACEHOLDER.sub(lambda found: b"<metadata>" + self.records[int(found.group(1))] + b"</metadata>", body)


class Repository:
    """An OAI-PMH repository over CATALOGUE's records; MAX_RECORDS per response."""

    def __init__(self, catalogue: Catalogue, *, name: str, admin_email: str, max_records: int):
        if max_records < 1:
            raise ValueError(f"max_records must be at least 1, not {max_records}")
        self.catalogue, self.name, self.max_records = catalogue, name, max_records
        self.admin_email = admin_email or f"webmaster@{catalogue.host}"
        self.base_url = oai_url(catalogue.base)

    def respond(self, store: Store, arguments: Iterable[tuple[str, str]]) -> bytes:
        """Answer one request (its ARGUMENTS as name, value pairs, as sent) with the response document."""
        pairs = list(arguments)
        root = etree.Element(f"{{{OAI}}}OAI-PMH", nsmap={None: OAI, "xsi": XSI})
        root.set(f"{{{XSI}}}schemaLocation", f"{OAI} {OAI_SCHEMA}")
        etree.SubElement(root, f"{{{OAI}}}responseDate").text = now()
        request = etree.SubElement(root, f"{{{OAI}}}request")
        request.text = self.base_url
        reply = _Reply(root)
        try:
            verb, args = _check(pairs)
            for name, value in (("verb", verb), *sorted(args.items())):
                request.set(name, value)
            reply.element = etree.SubElement(root, f"{{{OAI}}}{verb}")
            getattr(self, f"_{verb}")(store, reply, args)
        except OAIError as error:
            for child in root[2:]:
                root.remove(child)
            reply.records.clear()
            if error.code in ("badVerb", "badArgument"):
                request.attrib.clear()
            element = etree.SubElement(root, f"{{{OAI}}}error", code=error.code)
            element.text = error.message
        return reply.serialise()

    # the verbs

    def _Identify(self, store: Store, reply: _Reply, args: dict) -> None:
        for name, value in (
            ("repositoryName", self.name), ("baseURL", self.base_url), ("protocolVersion", "2.0"),
            ("adminEmail", self.admin_email), ("earliestDatestamp", store.earliest_datestamp() or now()),
            ("deletedRecord", "persistent"), ("granularity", GRANULARITY),
        ):
            _text(reply.element, name, value)

    def _ListMetadataFormats(self, store: Store, reply: _Reply, args: dict) -> None:
        if "identifier" in args:
            self._record(store, args["identifier"])
        for prefix, (schema, namespace) in FORMATS.items():
            entry = _text(reply.element, "metadataFormat")
            _text(entry, "metadataPrefix", prefix)
            _text(entry, "schema", schema)
            _text(entry, "metadataNamespace", namespace)

    def _ListSets(self, store: Store, reply: _Reply, args: dict) -> None:
        token = Token.decode(args["resumptionToken"], "ListSets") if "resumptionToken" in args else Token("ListSets")
        sets = _with_parents(store)
        if not sets:
            raise OAIError("noSetHierarchy", "this repository has no sets yet")
        remaining = [(spec, name) for spec, name in sets if token.last_set is None or spec > token.last_set]
        page = remaining[:self.max_records]
        for spec, name in page:
            entry = _text(reply.element, "set")
            _text(entry, "setSpec", spec)
            _text(entry, "setName", name)
        if token.last_set is not None or len(remaining) > len(page):
            more = replace(token, last_set=page[-1][0], cursor=token.cursor + len(page), total=len(sets))
            self._token(reply.element, more if len(remaining) > len(page) else None, token.cursor, len(sets))

    def _GetRecord(self, store: Store, reply: _Reply, args: dict) -> None:
        prefix = _prefix(args["metadataPrefix"])
        record = self._record(store, args["identifier"])
        self._write(store, reply, record, prefix)

    def _ListIdentifiers(self, store: Store, reply: _Reply, args: dict) -> None:
        self._list(store, reply, args, "ListIdentifiers")

    def _ListRecords(self, store: Store, reply: _Reply, args: dict) -> None:
        self._list(store, reply, args, "ListRecords")

    # lists

    def _list(self, store: Store, reply: _Reply, args: dict, verb: str) -> None:
        token = Token.decode(args["resumptionToken"], verb) if "resumptionToken" in args else self._begin(store, args, verb)
        query = {"since": token.since, "until": token.until, "set_spec": token.set_spec}
        records = store.harvest_records(token.after, token.upto, self.max_records + 1, **query)
        if not records and "resumptionToken" in args:  # everything still to send changed since: take it in
            token = replace(token, upto=store.harvest_position())
            records = store.harvest_records(token.after, token.upto, self.max_records + 1, **query)
        if not records:
            raise OAIError("noRecordsMatch", "no record matches the arguments")
        page = records[:self.max_records]
        for record in page:
            if verb == "ListIdentifiers":
                self._header(reply.element, record)
            else:
                self._write(store, reply, record, token.prefix)
        more = len(records) > len(page)
        if more or "resumptionToken" in args:
            following = replace(token, after=page[-1].position, cursor=token.cursor + len(page))
            self._token(reply.element, following if more else None, token.cursor, token.total)

    def _begin(self, store: Store, args: dict, verb: str) -> Token:
        prefix = _prefix(args["metadataPrefix"])
        since, until = args.get("from"), args.get("until")
        if since is not None:
            since, since_granularity = parse_datestamp(since, "from", end=False)
        if until is not None:
            until, until_granularity = parse_datestamp(until, "until", end=True)
        if since is not None and until is not None:
            if since_granularity != until_granularity:
                raise OAIError("badArgument", "from and until must have the same granularity")
            if since > until:
                raise OAIError("badArgument", f"from {args['from']} is later than until {args['until']}")
        set_spec = args.get("set")
        if set_spec is not None and not store.harvest_sets():
            raise OAIError("noSetHierarchy", "this repository has no sets yet")
        upto = store.harvest_position()
        total = store.harvest_count(upto, since=since, until=until, set_spec=set_spec)
        return Token(verb, prefix, since, until, set_spec, 0, upto, 0, total)

    # parts

    def _record(self, store: Store, identifier: str) -> HarvestRecord:
        key = self.catalogue.key_of(identifier)
        record = store.harvest_record(key) if key else None
        if record is None:
            raise OAIError("idDoesNotExist", f"{identifier!r} is not the identifier of a record of this repository")
        return record

    def _header(self, parent: etree._Element, record: HarvestRecord) -> None:
        header = _text(parent, "header")
        if record.deleted:
            header.set("status", "deleted")
        _text(header, "identifier", self.catalogue.identifier(record.key))
        _text(header, "datestamp", record.datestamp)
        for spec in record.sets:
            _text(header, "setSpec", spec)

    def _write(self, store: Store, reply: _Reply, record: HarvestRecord, prefix: str) -> None:
        entry = _text(reply.element, "record")
        described = None if record.deleted else self.catalogue.describe(store, record.key)
        if described is not None and not described.subjects:  # changed since the follower's last round
            described = None
        self._header(entry, replace(record, deleted=described is None))
        if described is not None:
            _text(entry, "metadata", reply.splice(self.catalogue.metadata(described, prefix)))

    def _token(self, parent: etree._Element, token: Token | None, cursor: int, total: int) -> None:
        element = _text(parent, "resumptionToken", token.encode() if token else None)
        element.set("completeListSize", str(total))
        element.set("cursor", str(cursor))


def _text(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{OAI}}}{name}")
    element.text = text
    return element


def _check(pairs: list[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """The verb and the other arguments of a request. Raises OAIError badVerb or badArgument."""
    if any(_CONTROL.search(text) for pair in pairs for text in pair):
        raise OAIError("badArgument", "an argument holds control characters, which XML cannot carry")
    names = [name for name, _ in pairs]
    verbs = [value for name, value in pairs if name == "verb"]
    if len(verbs) != 1 or verbs[0] not in VERBS:
        what = "no verb" if not verbs else "the verb repeated" if len(verbs) > 1 else f"{verbs[0]!r}, not a verb"
        raise OAIError("badVerb", f"{what}; the verbs are {', '.join(VERBS)}")
    verb = verbs[0]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise OAIError("badArgument", f"repeated: {', '.join(repeated)}")
    args = {name: value for name, value in pairs if name != "verb"}
    required, optional = VERBS[verb]
    if "resumptionToken" in args:
        if verb not in RESUMABLE:
            raise OAIError("badArgument", f"{verb} takes no resumptionToken")
        if len(args) > 1:
            raise OAIError("badArgument", "resumptionToken is an exclusive argument")
        return verb, args
    illegal = sorted(set(args) - set(required) - set(optional))
    if illegal:
        raise OAIError("badArgument", f"{verb} takes no {', '.join(map(repr, illegal))}")
    missing = [name for name in required if name not in args]
    if missing:
        raise OAIError("badArgument", f"{verb} needs {', '.join(missing)}")
    return verb, args


def _prefix(prefix: str) -> str:
    if prefix not in FORMATS:
        raise OAIError("cannotDisseminateFormat", f"{prefix!r} is not a metadata format here; use {', '.join(FORMATS)}")
    return prefix


def _with_parents(store: Store) -> list[tuple[str, str]]:
    """Every set, with the sets above each (``collection`` above ``collection:…``), by spec."""
    sets = {s.spec: s.name for s in store.harvest_sets()}
    for spec in list(sets):
        parts = spec.split(":")
        for n in range(1, len(parts)):
            parent = ":".join(parts[:n])
            sets.setdefault(parent, {"collection": "Source collections", "group": "Manifest groups"}.get(parent, parent))
    return sorted(sets.items())
