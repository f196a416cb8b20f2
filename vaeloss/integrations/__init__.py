"""Collapse metrics inside the user's own training: callbacks for Lightning
(:mod:`vaeloss.integrations.lightning`, and :mod:`vaeloss.integrations.pytorch_lightning` for
the old namespace) and Keras (:mod:`vaeloss.integrations.keras`). They only gather the
posteriors and log :meth:`vaeloss.metrics.CollapseSummary.scalars`; the maths is
:mod:`vaeloss.metrics`'s."""
