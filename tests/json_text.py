"""The text of a JSON document (a notebook's cell sources, outputs and metadata alike), for tests that search it."""


def json_strings(value):
    """Every string in a parsed JSON document, depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)
