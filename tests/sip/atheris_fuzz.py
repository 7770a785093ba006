"""Coverage-guided fuzzing of the SIP parser and responder with atheris (optional: `pip
install -e '.[fuzz]'`); the same target as the hypothesis tests in test_fuzz.py.

    python tests/sip/atheris_fuzz.py -max_total_time=120 -max_len=4096 [CORPUS_DIR]

Anything it finds goes into test_fuzz.test_found_by_atheris.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports():
    import sipmap.sip.message
    import sipmap.sip.parser
    import sipmap.sip.responder  # noqa: F401

from tests.sip.test_fuzz import one_input

if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
