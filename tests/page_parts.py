"""What an AppTest page shows, read the way the Train page's tests read it."""

import json


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def button(at, key):
    return at.button(key=key)


def figure(at, key) -> dict:
    """The Plotly figure a live chart was given."""
    element = next(c for c in at.get("bidi_component") if c.key == key)
    return json.loads(json.loads(element.proto.json)["figure"])
