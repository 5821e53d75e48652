"""Reporting: the CSV tables, figures and report text drawn from the measures' rows."""
