# The generator of the corpus and its helpers (imported by tests/check/test_generated.py and
# bench/corpus.py with this folder on sys.path), not test modules.
collect_ignore_glob = ["*.py"]
