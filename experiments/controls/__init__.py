"""Chaos Toolkit controls: environment (emulator and stack), measurement (time-to-heal), report (HTML)."""
