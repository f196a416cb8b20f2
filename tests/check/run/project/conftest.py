# A user's project (a script and the modules it imports): material for `vaeloss check`.
collect_ignore_glob = ["*.py"]
