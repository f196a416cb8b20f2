"""The project-wide check's cache (tests of project/cache.py)."""

import vaeloss.project.cache as cache_module
from vaeloss.check.result import Finding
from vaeloss.project.cache import Cache
from vaeloss.project.outcome import FileOutcome

FINDING = Finding("beta-depends-on-batch-size", "error", "m", 6, "line 6")
CHECKED = FileOutcome(
    "vae.py", "checked", 1, line=5, where="line 5", target="loss_function", framework="torch",
    likelihood="bernoulli", beta="B*D", findings=(FINDING,), report={"likelihood": "bernoulli"},
)  # fmt: skip


def test_an_outcome_reads_back_equal(tmp_path):
    cache = Cache(tmp_path / ".vaeloss_cache")
    key = Cache.key(b"def loss(): ...", {"batch_size": 128})
    assert cache.get(key) is None
    cache.put(key, CHECKED)
    assert cache.get(key) == CHECKED
    assert (tmp_path / ".vaeloss_cache" / ".gitignore").read_text() == "*\n"
    assert (
        (tmp_path / ".vaeloss_cache" / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )


def test_failures_are_not_kept(tmp_path):
    cache = Cache(tmp_path / "c")
    cache.put("k", FileOutcome("a.py", "failed", 2, reason="timed out"))
    assert cache.get("k") is None and not (tmp_path / "c").exists()


def test_no_folder_writes_nothing(tmp_path):
    Cache(None).put("k", CHECKED)
    assert Cache(None).get("k") is None and list(tmp_path.iterdir()) == []


def test_the_key_changes_with_content_options_and_version(monkeypatch):
    base = Cache.key(b"a", {"B": 1})
    assert Cache.key(b"a", {"B": 1}) == base
    assert Cache.key(b"b", {"B": 1}) != base and Cache.key(b"a", {"B": 2}) != base
    monkeypatch.setattr(cache_module, "__version__", "999")
    assert Cache.key(b"a", {"B": 1}) != base


def test_an_entry_of_another_shape_is_checked_again(tmp_path):
    cache = Cache(tmp_path)
    (tmp_path / "entries").mkdir()
    (tmp_path / "entries" / "k.json").write_text('{"path": "a.py"}')
    assert cache.get("k") is None
