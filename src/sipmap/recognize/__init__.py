"""Longest-prefix-match tables and the source-IP recogniser."""
