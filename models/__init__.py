"""Recommenders behind one interface (fit / score / recommend / fold_in / save / load)."""
