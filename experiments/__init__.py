"""Chaos Toolkit experiments and the extension they use (actions, probes, tolerances, controls)."""
