"""``vaeloss audit``: posterior-collapse report and a recommended beta."""
