"""The corpus builder's parts; `tools/build_corpus.py` is the command that runs them."""
