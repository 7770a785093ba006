"""Storage: one interface (`base`), an SQLite implementation, versioned migrations.

This package is the only place SQL lives.
"""
