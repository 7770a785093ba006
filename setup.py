"""Build glue for the C extension; everything else is declared in pyproject.toml."""

from setuptools import Extension, setup

LPM_DIR = "src/sipmap/recognize"
# _lpm.c is the Python module; lpm_*.c what it wraps (see the comment atop _lpm.c).
_TABLE = ["lpm_prefixes", "lpm_chunks", "lpm_table", "lpm_build", "lpm_region", "lpm_routes"]
LPM_SOURCES = ["_lpm", *_TABLE]
LPM_HEADERS = ["lpm_args", *_TABLE]

setup(
    ext_modules=[
        Extension(
            "sipmap.recognize._lpm",
            sources=[f"{LPM_DIR}/{name}.c" for name in LPM_SOURCES],
            depends=[f"{LPM_DIR}/{name}.h" for name in LPM_HEADERS],
            # hidden: only PyInit__lpm is exported, so calls between the files stay direct
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden"],
        )
    ]
)
