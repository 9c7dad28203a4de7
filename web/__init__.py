"""The web side of CineAgent: who is calling (auth), abuse limits, and which routes are open."""
