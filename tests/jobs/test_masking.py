"""SecretMasker: every form of a secret is masked, also across chunk boundaries."""

import base64
from urllib.parse import quote, quote_plus

import pytest

from jobs.masking import MASK, SecretMasker

SECRET = "s3cr3t-V@lue/with+chars"


def test_plain_value_is_masked():
    assert SecretMasker([SECRET]).mask(f"token={SECRET};") == f"token={MASK};"


def test_value_with_trailing_newline_is_masked():
    assert SecretMasker([SECRET + "\n"]).mask(f"x {SECRET} y") == f"x {MASK} y"


@pytest.mark.parametrize("prefix", [b"", b"a", b"ab", b"abc", b"abcd"])
@pytest.mark.parametrize("url_safe", [False, True])
def test_base64_inside_longer_stream_is_masked(prefix, url_safe):
    encode = base64.urlsafe_b64encode if url_safe else base64.b64encode
    encoded = encode(prefix + SECRET.encode() + b"-and-more").decode()
    masked = SecretMasker([SECRET]).mask(encoded)
    assert MASK in masked
    assert len(masked) < len(encoded)


def test_base64_of_value_with_newline_is_masked():
    encoded = base64.b64encode((SECRET + "\n").encode()).decode()
    assert SecretMasker([SECRET]).mask(encoded).startswith(MASK)


@pytest.mark.parametrize("encode", [lambda value: quote(value, safe=""), quote_plus])
def test_url_encoded_value_is_masked(encode):
    assert SecretMasker([SECRET]).mask(f"?q={encode(SECRET)}") == f"?q={MASK}"


def test_every_line_of_multi_line_secret_is_masked():
    key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n0Lq6tGd+ZpJzT1Xm2xQ\n-----END KEY-----\n"
    masker = SecretMasker([key])
    for line in key.splitlines():
        assert masker.mask(f"  {line}  ") == f"  {MASK}  "


def test_value_split_across_two_chunks_is_masked():
    masker = SecretMasker([SECRET])
    assert masker.feed("stdout", "start " + SECRET[:5], now=0.0) == []
    assert masker.feed("stdout", SECRET[5:] + " end", now=5.0) == [("stdout", f"start {MASK}"), ("stdout", f"{MASK} end")]


def test_held_chunk_is_released_after_hold_time():
    masker = SecretMasker([SECRET])
    masker.feed("stdout", "ends with s3", now=0.0)
    assert masker.flush(older_than=1.0, now=0.5) == []
    assert masker.flush(older_than=1.0, now=1.5) == [("stdout", "ends with s3")]


def test_unrelated_line_passes_at_once():
    assert SecretMasker([SECRET]).feed("stderr", "all good", now=0.0) == [("stderr", "all good")]


def test_no_secrets_passes_everything():
    assert SecretMasker([]).feed("stdout", "anything", now=0.0) == [("stdout", "anything")]


def test_sink_masks_before_storing(db_app):
    from app.extensions import db
    from app.runs.logs import read_lines
    from jobs.log_sink import LogSink
    from tests.people import make_run

    from app.models import Project

    project = Project(name="masked", clone_url="/srv/git/masked")
    db.session.add(project)
    db.session.commit()
    run = make_run(project)
    sink = LogSink(db.engine, None, run.id, None, SecretMasker([SECRET]))
    sink.write("stdout", f"the secret is {SECRET}")
    sink.write("stdout", "split " + SECRET[:4])
    sink.write("stdout", SECRET[4:])
    sink.close()
    texts = [line["text"] for line in read_lines(db.engine, run.id)]
    assert texts == [f"the secret is {MASK}", f"split {MASK}", MASK]
