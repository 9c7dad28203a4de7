"""Offline metrics and protocols, gold-set evaluation, nightly job, feedback harvesting."""
