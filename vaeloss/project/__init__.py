"""``vaeloss check PATH...`` on a whole project: its files (:mod:`~vaeloss.project.discover`),
those that may hold a VAE loss (:mod:`~vaeloss.project.prefilter`), its configuration
(:mod:`~vaeloss.project.config`), the checks in parallel with a cache
(:mod:`~vaeloss.project.run`, :mod:`~vaeloss.project.cache`), and the summary in the formats CI
reads (:mod:`~vaeloss.project.formats`)."""

FORMATS = ("text", "json", "github", "sarif")
"""The summary's formats (``--format``); each has its function in :mod:`~vaeloss.project.formats`."""
