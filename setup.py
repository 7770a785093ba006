"""Build glue for the C extension; everything else is declared in pyproject.toml."""

from setuptools import Extension, setup

LPM_DIR = "src/sipmap/recognize"
# _lpm.c is the Python module; lpm_*.c what it wraps (see the comment atop _lpm.c).
_TABLE = [
    *("lpm_prefixes", "lpm_chunks", "lpm_table", "lpm_build", "lpm_region"),
    *("lpm_routes", "lpm_ranges"),
]
LPM_SOURCES = ["_lpm", *_TABLE]
LPM_HEADERS = ["lpm_args", *_TABLE]

SIP_DIR = "src/sipmap/sip"
# _fast.c is the Python module (fast_udp.c its socket side); sip_* the plain C it wraps.
FAST_SOURCES = ["_fast", "fast_udp", "sip_scan", "sip_reply", "sip_cache", "sip_blake2b"]
FAST_HEADERS = ["fast", "sip_scan", "sip_reply", "sip_cache", "sip_blake2b"]
FLAGS = ["-O3", "-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden"]

setup(
    ext_modules=[
        Extension(
            "sipmap.recognize._lpm",
            sources=[f"{LPM_DIR}/{name}.c" for name in LPM_SOURCES],
            depends=[f"{LPM_DIR}/{name}.h" for name in LPM_HEADERS],
            # hidden: only PyInit__lpm is exported, so calls between the files stay direct
            extra_compile_args=FLAGS,
        ),
        Extension(
            "sipmap.sip._fast",
            sources=[f"{SIP_DIR}/{name}.c" for name in FAST_SOURCES],
            depends=[f"{SIP_DIR}/{name}.h" for name in FAST_HEADERS],
            # recvmmsg/sendmmsg are GNU extensions of the C library
            define_macros=[("_GNU_SOURCE", "1")],
            extra_compile_args=FLAGS,
        ),
    ]
)
