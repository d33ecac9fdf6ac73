"""Math answer extraction and strict equivalence: the verifiable reward of R1-Zero training.

Public API (see docs/grading.md and docs/architecture.md): ``Verdict``, ``extract_answer``,
``extract_gold``, ``EXTRACT_MODES``, ``grade``, ``answers_equal``, ``grade_file``. ``grade``
never raises and is time-bounded from any thread; its equivalence policy is documented in
:mod:`r1zero.grading.equivalence`, the extraction modes in :mod:`r1zero.grading.extract`.
"""

from .equivalence import answers_equal
from .extract import EXTRACT_MODES, extract_answer, extract_gold
from .grader import REASONS, Verdict, grade, grade_file

__all__ = [
    "EXTRACT_MODES", "REASONS", "Verdict", "answers_equal", "extract_answer", "extract_gold",
    "grade", "grade_file",
]
