from waystream_guest.errors import LIMIT, TransformError, cut, describe


def raise_chain():
    try:
        {}["missing"]
    except KeyError as e:
        raise RuntimeError("lookup failed") from e


def test_chained_exceptions_are_named():
    try:
        raise_chain()
    except RuntimeError as e:
        text = describe(e)
    assert text.splitlines()[0] == "RuntimeError: lookup failed"
    assert text.splitlines()[-1] == "caused by: KeyError: 'missing'"
    assert "in raise_chain" in text


def test_long_texts_keep_the_first_line_and_the_end_within_the_limit():
    text = "ValueError: first line\n" + "x" * 10_000 + "\nlast frame"
    short = cut(text)
    assert len(short.encode()) <= LIMIT
    assert short.startswith("ValueError: first line\n… (") and short.endswith("last frame")
    assert len(describe(ValueError("é" * 5000)).encode()) <= LIMIT


def test_transform_errors_are_their_message():
    assert describe(TransformError("plain")) == "plain"
