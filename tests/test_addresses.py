"""Which addresses a fetch may reach (enricher.addresses), checked on real loopback connections.

Public-looking host names resolve through a test-only resolver (deadhosts.Names) that the real
GuardedTransport asks instead of the system's DNS; everything after the lookup (the check, the connect,
HTTP) is real. A name listed in ``allowed_hosts`` plays a public image host that may redirect elsewhere.
"""

from __future__ import annotations

import ipaddress

import pytest
from conftest import Reply
from deadhosts import Names

from enricher.addresses import AddressGuard, GuardedTransport, address_kind
from enricher.errors import BlockedAddressError, FetchError
from enricher.fetch import Fetcher

PUBLIC_NAME = "images.example.org"
SECRET = '{"secret": 1}'


@pytest.fixture
def guarded(config):
    """A Fetcher that refuses private addresses, resolving through NAMES: ``guarded(names, **settings)``."""
    fetchers = []

    def build(names: Names, **settings) -> Fetcher:
        settings = config(allow_private=False, **settings)
        fetchers.append(Fetcher(settings, transport=GuardedTransport(AddressGuard(settings, resolve=names))))
        return fetchers[-1]

    yield build
    for fetcher in fetchers:
        fetcher.close()


@pytest.mark.parametrize(
    "address, kind",
    [
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
        ("127.0.0.5", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("fd00::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("239.1.1.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-global"),
    ],
)
def test_address_kinds(address, kind):
    assert address_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_name_is_refused_on_the_address_it_resolves_to(guarded, stub, scheme):
    """The check runs where the connection is opened, for HTTPS as for HTTP: nothing is connected."""
    stub.json("/doc.json", SECRET)
    names = Names({PUBLIC_NAME: "127.0.0.1"})
    url = f"{scheme}://{PUBLIC_NAME}:{stub.port}/doc.json"
    with pytest.raises(BlockedAddressError) as caught:
        guarded(names).get_json(url)
    assert caught.value.where == url
    assert f"host {PUBLIC_NAME} resolves to 127.0.0.1, a loopback address" in str(caught.value)
    assert names.lookups[PUBLIC_NAME] == 1 and stub.hits["/doc.json"] == 0


def test_an_allowed_name_is_fetched_from_the_address_its_lookup_gave(guarded, stub):
    """The system cannot resolve the name: the document can only have come over the resolver's answer."""
    stub.json("/doc.json", '{"ok": 1}')
    names = Names({PUBLIC_NAME: "127.0.0.1"})
    assert guarded(names, allowed_hosts=[PUBLIC_NAME]).get_json(f"http://{PUBLIC_NAME}:{stub.port}/doc.json") == {"ok": 1}
    assert stub.hits["/doc.json"] == 1


def test_a_changed_dns_answer_is_checked_before_it_is_used(guarded, stub):
    """Rebinding: the first lookup gives a public address, later ones loopback. Each connection resolves
    once and connects to the answer it checked, so the public answer is never checked and then swapped
    for the loopback one (a check with its own lookup before the connect would have let it through)."""
    stub.json("/doc.json", SECRET)
    names = Names({"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    url = f"http://rebind.example:{stub.port}/doc.json"
    fetcher = guarded(names, timeout=0.5, retries=0)
    with pytest.raises(FetchError) as first:  # the public address is not reachable from the test machine
        fetcher.get_json(url)
    assert not isinstance(first.value, BlockedAddressError) and names.lookups["rebind.example"] == 1
    with pytest.raises(BlockedAddressError, match="resolves to 127.0.0.1"):
        fetcher.get_json(url)
    assert names.lookups["rebind.example"] == 2 and stub.hits["/doc.json"] == 0


@pytest.mark.parametrize(
    "target, named",
    [
        ("http://127.0.0.1:{port}/secret.json", "127.0.0.1, a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
        ("http://metadata.internal/latest/meta-data/", "metadata.internal resolves to 169.254.169.254"),
    ],
)
def test_a_redirect_from_a_public_host_to_a_private_address_is_refused(guarded, stub, target, named):
    """The allowed name stands for a public image host; its redirect leads to an address nobody allowed."""
    stub.json("/secret.json", SECRET)
    target = target.format(port=stub.port)
    stub.route("/hop", Reply(302, b"", {"Location": target}))
    names = Names({PUBLIC_NAME: "127.0.0.1", "metadata.internal": "169.254.169.254"})
    with pytest.raises(BlockedAddressError) as caught:
        guarded(names, allowed_hosts=[PUBLIC_NAME]).get_json(f"http://{PUBLIC_NAME}:{stub.port}/hop")
    assert caught.value.where == target and named in str(caught.value)
    assert stub.hits["/hop"] == 1 and stub.hits["/secret.json"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:127.0.0.1]:{port}/secret.json",
        "http://[::1]:{port}/secret.json",
        "http://2130706433:{port}/secret.json",
        "http://0x7f000001:{port}/secret.json",
        "http://127.1:{port}/secret.json",
        "http://example.org@127.0.0.1:{port}/secret.json",
    ],
)
def test_loopback_in_disguise_is_refused_before_any_lookup(guarded, stub, url):
    stub.json("/secret.json", SECRET)
    url = url.format(port=stub.port)
    names = Names({})
    with pytest.raises(BlockedAddressError, match="a loopback address") as caught:
        guarded(names).get_json(url)
    assert caught.value.where == url and url in str(caught.value)
    assert not names.lookups and stub.hits["/secret.json"] == 0


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "file:/etc/passwd", "ftp://example.org/manifest.json", "gopher://127.0.0.1:70/_GET%20/"],
)
@pytest.mark.parametrize("method", ["get_json", "get_bytes", "get_image"])
def test_other_schemes_are_refused(guarded, url, method):
    names = Names({})
    with pytest.raises(FetchError, match="unsupported URL scheme") as caught:
        getattr(guarded(names), method)(url)
    assert caught.value.where == url and url in str(caught.value)
    assert not names.lookups


def test_a_name_that_does_not_resolve_is_a_connection_failure_naming_it(guarded):
    url = "http://nowhere.example/m.json"
    with pytest.raises(FetchError, match="cannot resolve host nowhere.example") as caught:
        guarded(Names({}), retries=0).get_json(url)
    assert caught.value.where == url
