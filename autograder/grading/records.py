"""What grading passes around: a job (everything one submission's grading needs, plain data so it can
go to another process or a Dask worker), and the record it gives back (per test cell, then in total)."""
from dataclasses import asdict, dataclass, field


@dataclass
class GradeJob:
    student: str
    lab: str
    submission: str          # path of the submitted notebook
    source_notebook: dict    # instructor source: solutions and hidden tests
    release_notebook: dict   # what students received (for tamper checks)
    cell_timeout: float = 60.0
    budget: float = 300.0
    version: str = ""        # which received version this is (file name under received/)
    received_at: str = ""
    kind: str = ""           # in-session | resubmission | any
    fingerprint: str = ""    # hash of submission + source: unchanged means no need to regrade
    sandbox: bool = True     # run the kernel in bubblewrap (see sandbox.py)
    hidden: tuple = ()       # extra paths the kernel must not see (the course directory)
    submission_bytes: bytes = b""  # the file itself, so a worker elsewhere (Dask) needs no shared disk
    preload: tuple = ()      # modules the lab imports, imported in the kernel before the student's code
    notebook_name: str = ""  # which notebook of the assignment ("": the lab's own, LAB.ipynb)
    released: dict = None    # {name: released notebook} of every notebook of the assignment (matching.py)
    files: tuple = ()        # (relative path, bytes) of the assignment's other files, put beside the notebook


@dataclass
class CellResult:
    grade_id: str
    points: float
    max_points: float
    status: str   # passed | partial | failed | error | tampered | timeout | died | skipped
    message: str = ""
    seconds: float = 0.0
    tampered: bool = False    # the test cell's code was edited (the original was run)
    replaced: list = field(default_factory=list)  # functions student code replaced before this test
    bonus: bool = False       # a test of an optional (*) section: its points make up for core points lost


@dataclass
class GradeRecord:
    student: str
    lab: str
    cells: list = field(default_factory=list)
    problem: str = ""            # why the submission could not be graded at all (the student sees it)
    error: str = ""              # the grader's own failure, in full (the instructor alone sees it)
    kernel_restarts: int = 0
    seconds: float = 0.0
    budget_exhausted: bool = False
    version: str = ""
    received_at: str = ""
    kind: str = ""
    fingerprint: str = ""
    notebook: dict = None        # the executed notebook (with hidden tests: instructor eyes only)
    notebook_name: str = ""      # which notebook of the assignment ("": the lab's own)
    restored: list = field(default_factory=list)  # locked cells of given code or text the student had changed

    @property
    def core_score(self):
        return sum(c.points for c in self.cells if not c.bonus)

    @property
    def bonus(self):
        """Bonus points earned (uncapped: how much of them counts is score's business)."""
        return sum(c.points for c in self.cells if c.bonus)

    @property
    def bonus_max(self):
        return sum(c.max_points for c in self.cells if c.bonus)

    @property
    def score(self):
        """Core points plus bonus points, capped at the core maximum: a lab's grade never goes above 100%."""
        return min(self.max_score, self.core_score + self.bonus)

    @property
    def max_score(self):
        """The core's points: bonus cells add nothing to the maximum."""
        return sum(c.max_points for c in self.cells if not c.bonus)

    @property
    def tampered(self):
        return [c.grade_id for c in self.cells if c.tampered or c.status == "tampered" or c.replaced]

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("notebook")
        data.update(score=self.score, max_score=self.max_score, bonus=self.bonus, bonus_max=self.bonus_max)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "GradeRecord":
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "cells"}
        # results written before bonus cells existed have no "bonus" key: CellResult's default (False) applies
        cells = [CellResult(**{k: v for k, v in c.items() if k in CellResult.__dataclass_fields__})
                 for c in data.get("cells", [])]
        return cls(**fields, cells=cells)
