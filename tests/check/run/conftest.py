# The files here are users' scripts (they download data and train at the top level when run):
# material for `vaeloss check`, not modules for pytest to import.
collect_ignore_glob = ["*.py", "*.ipynb"]
