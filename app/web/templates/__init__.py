"""Bottle SimpleTemplate files of the web interfaces (package so they ship as data)."""
