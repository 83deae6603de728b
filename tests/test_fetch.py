"""The network edge (enricher.fetch) against real loopback servers that misbehave on purpose."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
from conftest import Reply
from factories import gradient_image, png_header
from PIL import Image

from enricher.errors import (
    BlockedAddressError,
    ContentTypeError,
    FetchError,
    ImageError,
    InputError,
    ManifestError,
    TooLargeError,
)
from enricher.fetch import MAX_REDIRECTS, MAX_RETRY_DELAY, Fetcher, retry_delay
from enricher.manifest import read_manifests

JSON = {"Content-Type": "application/json"}
JPEG = {"Content-Type": "image/jpeg"}


def jpeg(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    gradient_image(width, height).save(buffer, "JPEG")
    return buffer.getvalue()


def test_json_from_url_and_file_path(fetcher, stub, tmp_path):
    url = stub.json("/doc.json", '{"a": 1}')
    path = tmp_path / "doc.json"
    path.write_text('{"b": 2}')
    assert fetcher.get_json(url) == {"a": 1}
    assert fetcher.get_json(str(path), local=True) == {"b": 2}


def test_a_name_read_from_a_remote_document_is_never_a_local_file(fetcher, stub, tmp_path, caplog, config):
    """A remote collection naming /etc/... as a member, or a canvas naming a local path as its image
    service, was read from this machine's disk."""
    secret = tmp_path / "secret.json"
    secret.write_text('{"@context": "http://iiif.io/api/presentation/3/context.json", "id": "x", "type": "Manifest"}')
    with pytest.raises(BlockedAddressError, match="may not name a local file") as caught:
        fetcher.get_json(str(secret))
    assert caught.value.where == str(secret)
    collection = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "https://example.org/c",
                  "type": "Collection", "label": {"en": ["c"]}, "items": [{"id": str(secret), "type": "Manifest"}]}
    url = stub.json("/collection.json", json.dumps(collection))
    assert list(read_manifests(url, fetcher, config())) == []
    assert "may not name a local file" in caplog.text and str(secret) in caplog.text


@pytest.mark.parametrize("body", ["<html><body>hello</body></html>", "{not json", "[1, 2]", ""])
def test_not_a_json_object_is_a_manifest_error_naming_the_url(fetcher, stub, body):
    url = stub.json("/bad.json", body)
    with pytest.raises(ManifestError) as caught:
        fetcher.get_json(url)
    assert caught.value.where == url and url in str(caught.value)


def test_missing_local_file_names_the_path(fetcher, tmp_path):
    missing = tmp_path / "nowhere.json"
    with pytest.raises(InputError, match="cannot read file") as caught:
        fetcher.get_json(str(missing), local=True)
    assert caught.value.where == str(missing)


def test_not_found_names_url_and_status(fetcher, stub):
    url = stub.url("/nothing-here.jpg")
    with pytest.raises(FetchError, match="HTTP 404") as caught:
        fetcher.get_image(url)
    assert caught.value.where == url


def test_unreachable_server_names_the_url(config, closed_port):
    url = f"http://127.0.0.1:{closed_port}/manifest.json"
    with Fetcher(config(retries=1)) as fetcher, pytest.raises(FetchError, match="cannot connect") as caught:
        fetcher.get_json(url)
    assert caught.value.where == url


def test_429_is_retried_after_the_delay_the_server_asks(fetcher, stub):
    url = stub.route("/busy.json", Reply(429, b"slow down", {"Retry-After": "0"}), Reply(200, b'{"ok": true}', JSON))
    assert fetcher.get_json(url) == {"ok": True}
    assert stub.hits["/busy.json"] == 2


def test_retry_after_as_http_date_is_honoured(fetcher, stub):
    past = format_datetime(datetime.now(timezone.utc) - timedelta(seconds=5), usegmt=True)
    url = stub.route("/dated.json", Reply(503, b"", {"Retry-After": past}), Reply(200, b"{}", JSON))
    assert fetcher.get_json(url) == {}
    assert stub.hits["/dated.json"] == 2


def test_5xx_is_retried_with_backoff_until_it_passes(config, stub):
    url = stub.route("/flaky.json", Reply(500), Reply(502), Reply(200, b'{"n": 3}', JSON))
    with Fetcher(config(retries=3)) as fetcher:
        assert fetcher.get_json(url) == {"n": 3}
    assert stub.hits["/flaky.json"] == 3


def test_retries_run_out_with_the_last_status(config, stub):
    url = stub.route("/down.json", Reply(503, b"down"))
    with Fetcher(config(retries=2)) as fetcher, pytest.raises(FetchError, match="HTTP 503") as caught:
        fetcher.get_json(url)
    assert caught.value.where == url
    assert stub.hits["/down.json"] == 3


def test_no_retry_on_4xx(config, stub):
    url = stub.route("/gone.json", Reply(410, b"gone"))
    with Fetcher(config(retries=3)) as fetcher, pytest.raises(FetchError, match="HTTP 410"):
        fetcher.get_json(url)
    assert stub.hits["/gone.json"] == 1


@pytest.mark.parametrize(
    "value, attempt, expected",
    [("3", 0, 3.0), ("", 2, 0.4), ("not a date", 1, 0.2), ("100000", 0, MAX_RETRY_DELAY), ("0", 5, 0.0)],
)
def test_retry_delay(value, attempt, expected):
    headers = httpx.Headers({"Retry-After": value} if value else {})
    assert retry_delay(headers, attempt, backoff=0.1) == pytest.approx(expected)


def test_retry_delay_from_a_future_http_date():
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 < retry_delay(httpx.Headers({"Retry-After": when}), 0, 0.1) <= 30


def test_slow_server_times_out(config, stub):
    url = stub.route("/slow.json", Reply(200, b"{}", JSON, delay=3))
    with Fetcher(config(timeout=0.2, retries=0)) as fetcher, pytest.raises(FetchError, match="no answer within 0.2 s") as caught:
        fetcher.get_json(url)
    assert caught.value.where == url


def test_declared_size_over_the_limit_is_refused_before_reading(config, stub):
    url = stub.route("/huge.jpg", Reply(200, b"tiny", {"Content-Type": "image/jpeg", "Content-Length": "999999999"}))
    with Fetcher(config(max_bytes=100_000)) as fetcher, pytest.raises(TooLargeError, match="999999999 bytes") as caught:
        fetcher.get_image(url)
    assert caught.value.where == url


def test_streamed_body_over_the_limit_is_cut_off(config, stub):
    url = stub.route("/endless.jpg", Reply(200, 4 * 1024 * 1024, JPEG))  # no Content-Length
    with Fetcher(config(max_bytes=200_000)) as fetcher, pytest.raises(TooLargeError, match="200000 bytes") as caught:
        fetcher.get_bytes(url)
    assert caught.value.where == url


def test_local_file_over_the_limit_is_refused(config, tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"pad": "x" * 5000}))
    with Fetcher(config(max_bytes=1000)) as fetcher, pytest.raises(TooLargeError):
        fetcher.get_json(str(path), local=True)


def test_image_is_decoded_to_rgb(fetcher, stub):
    url = stub.route("/ok.jpg", Reply(200, jpeg(64, 48), JPEG))
    image = fetcher.get_image(url)
    assert image.mode == "RGB" and image.size == (64, 48)


def test_html_where_an_image_is_expected_is_a_content_type_error(fetcher, stub):
    url = stub.route("/login", Reply(200, b"<html>please log in</html>", {"Content-Type": "text/html; charset=utf-8"}))
    with pytest.raises(ContentTypeError, match="text/html") as caught:
        fetcher.get_image(url)
    assert caught.value.where == url


@pytest.mark.parametrize("body", [b"\xff\xd8\xff\xe0 this is not really a jpeg", jpeg(400, 300)[:600]], ids=["garbage", "truncated"])
def test_corrupt_image_is_an_image_error_naming_the_url(fetcher, stub, body):
    url = stub.route("/broken.jpg", Reply(200, body, JPEG))
    with pytest.raises(ImageError, match="cannot decode image") as caught:
        fetcher.get_image(url)
    assert caught.value.where == url


def test_too_many_pixels_is_refused_before_decoding(config, stub):
    url = stub.route("/bomb.png", Reply(200, png_header(5000, 5000), {"Content-Type": "image/png"}))
    with Fetcher(config(max_pixels=1_000_000)) as fetcher, pytest.raises(ImageError, match="25000000 pixels") as caught:
        fetcher.get_image(url)
    assert caught.value.where == url
    assert Image.MAX_IMAGE_PIXELS is not None  # the global Pillow limit is left alone


def test_pixels_over_pillows_own_limit_are_refused(fetcher, stub):
    url = stub.route("/giant.png", Reply(200, png_header(100_000, 100_000), {"Content-Type": "image/png"}))
    with pytest.raises(ImageError, match="10000000000 pixels") as caught:
        fetcher.get_image(url)
    assert caught.value.where == url


@pytest.mark.parametrize(
    "host, address",
    [
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "127.0.0.1"),
        ("10.1.2.3", "10.1.2.3"),
        ("192.168.0.10", "192.168.0.10"),
        ("169.254.169.254", "169.254.169.254"),
        ("[::1]", "::1"),
        ("0.0.0.0", "0.0.0.0"),
        ("224.0.0.1", "224.0.0.1"),
    ],
)
def test_private_addresses_are_refused(config, stub, host, address):
    url = stub.url("/doc.json", host=host)
    with Fetcher(config(allow_private=False)) as fetcher, pytest.raises(BlockedAddressError) as caught:
        fetcher.get_json(url)
    assert caught.value.where == url
    assert host.strip("[]") in str(caught.value) and address in str(caught.value)
    assert stub.hits["/doc.json"] == 0


def test_allowed_hosts_open_one_private_host(config, stub):
    stub.json("/doc.json", "{}")
    with Fetcher(config(allow_private=False, allowed_hosts=["127.0.0.1"])) as fetcher:
        assert fetcher.get_json(stub.url("/doc.json")) == {}
        with pytest.raises(BlockedAddressError):
            fetcher.get_json(stub.url("/doc.json", host="localhost"))


def test_every_redirect_hop_is_checked(config, stub):
    inside = stub.json("/secret.json", '{"secret": 1}')
    url = stub.route("/hop", Reply(302, b"", {"Location": inside}))
    with Fetcher(config(allow_private=False, allowed_hosts=["localhost"])) as fetcher:
        with pytest.raises(BlockedAddressError, match="127.0.0.1") as caught:
            fetcher.get_json(stub.url("/hop", host="localhost"))
    assert caught.value.where == inside
    assert stub.hits["/secret.json"] == 0
    with Fetcher(config()) as fetcher:  # private allowed: the same redirect is followed
        assert fetcher.get_json(url) == {"secret": 1}


def test_relative_redirects_are_followed_and_loops_stop(fetcher, stub):
    stub.json("/target.json", '{"here": true}')
    url = stub.route("/moved", Reply(301, b"", {"Location": "target.json"}))
    assert fetcher.get_json(url) == {"here": True}
    loop = stub.route("/loop", Reply(302, b"", {"Location": "/loop"}))
    with pytest.raises(FetchError, match=f"more than {MAX_REDIRECTS} redirects"):
        fetcher.get_json(loop)


def test_a_public_address_is_fetched_as_written(config):
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers["Host"]))
        return httpx.Response(200, json={"ok": 1})

    # MockTransport stands in for the internet here; the address check itself runs for real.
    with Fetcher(config(allow_private=False), transport=httpx.MockTransport(answer)) as fetcher:
        assert fetcher.get_json("http://93.184.216.34:8080/m.json") == {"ok": 1}
    assert seen == [("http://93.184.216.34:8080/m.json", "93.184.216.34:8080")]


@pytest.mark.parametrize("url", ["ftp://example.org/m.json", "http:///nohost", "http://exa mple.org/"])
def test_unusable_urls_are_fetch_errors(fetcher, url):
    with pytest.raises(FetchError):
        fetcher.get_json(url)


def test_one_fetcher_serves_many_threads(fetcher, stub):
    urls = [stub.route(f"/t{i}.jpg", Reply(200, jpeg(32 + i, 24), JPEG)) for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(lambda url: fetcher.get_image(url).size, urls))
    assert sizes == [(32 + i, 24) for i in range(16)]
