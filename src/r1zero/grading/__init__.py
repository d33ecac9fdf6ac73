"""Math answer extraction and strict equivalence: the verifiable reward of R1-Zero training.

Public API (see docs/architecture.md): ``Verdict``, ``extract_answer``, ``grade``,
``answers_equal``, ``grade_file``. ``grade`` never raises and is time-bounded from any
thread; its equivalence policy is documented in :mod:`r1zero.grading.equivalence`.
"""

from .equivalence import answers_equal
from .extract import extract_answer
from .grader import REASONS, Verdict, grade, grade_file

__all__ = ["REASONS", "Verdict", "answers_equal", "extract_answer", "grade", "grade_file"]
