"""The Atom feed for feed readers: a stable document, conditional GETs answered with 304."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest

from .._web import post, rate_by_fetch

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def atom_path(ada):
    post(ada, "/welcome/keywords", {"keywords": "speech recognition"})
    post(ada, "/settings/atom", {"action": "regenerate"})
    return "/atom/" + ada.get("/settings.json").get_json()["atom_url"].split("/atom/")[1]


def test_the_atom_feed_is_updated_when_its_newest_entry_is(client, atom_path):
    response = client.get(atom_path)
    root = ET.fromstring(response.data)
    entries = [e.find(f"{ATOM}updated").text for e in root.findall(f"{ATOM}entry")]
    updated = datetime.fromisoformat(root.find(f"{ATOM}updated").text)
    assert updated == max(datetime.fromisoformat(e) for e in entries)
    assert response.last_modified == updated
    assert client.get(atom_path).data == response.data  # nothing in it depends on the clock


def test_the_atom_feed_answers_conditional_gets_with_304(ada, client, atom_path):
    first = client.get(atom_path)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag and first.headers["Last-Modified"]
    assert "private" in first.headers["Cache-Control"]
    same = client.get(atom_path, headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.data == b""
    since = client.get(atom_path, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304
    # A like re-ranks the feed: the old ETag no longer matches.
    top = json.loads(client.get(atom_path.replace(".xml", ".json")).data)["papers"][0]
    rate_by_fetch(ada, top["paper_id"], "like")
    changed = client.get(atom_path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    titles = [e.find(f"{ATOM}title").text for e in ET.fromstring(changed.data).iter(f"{ATOM}entry")]
    assert top["title"] not in titles
