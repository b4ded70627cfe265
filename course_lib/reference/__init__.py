"""The reference pieces of the labs' exercises that course_lib's models and loops are built and tested with.

Each module names the lab whose answers it holds (`ANSWERS_OF = "04_gpt"`). The instructor's install, and
the kernels that grade, have them all; `course bundle` gives a module to students only once that lab's
resubmission window has closed. Until then the lab passes its own pieces in (`GPT(config, block=Block)`,
`train_lm(..., get_batch=get_batch)`).

What this package itself holds is how the hidden tests use them: `swap` (a reference piece in the place of
the student's for one test cell) and `judged_run` (a training run judged on the student's code alone when one
earlier exercise is wrong).
"""
_MISSING = object()
ACTIVE = []  # the swaps not restored yet; the grading guard restores them when the next cell starts


class swap:
    """Put these names into a namespace (the notebook's globals()) until restore(); restore() is idempotent.
    The hidden tests run a student's code this way with a reference piece in its place (see micrograd.py).
    Under the grader a swap ends with its cell even when a failed assert skips the cell's restore()."""

    def __init__(self, namespace, **names):
        self.namespace = namespace
        self.saved = {name: namespace.get(name, _MISSING) for name in names}
        namespace.update(names)
        ACTIVE.append(self)

    def restore(self):
        for name, value in self.saved.items():
            if value is _MISSING:
                self.namespace.pop(name, None)
            else:
                self.namespace[name] = value
        self.saved = {}
        if self in ACTIVE:
            ACTIVE.remove(self)

    def __enter__(self):  # `with swap(ns, name=reference): ...` restores at the block's end
        return self

    def __exit__(self, *error):
        self.restore()


def restore_all():
    """Every swap not restored yet, newest first (what the grading guard calls before the next cell)."""
    for swapped in reversed(list(ACTIVE)):
        swapped.restore()


def same_tensor(a, b, atol=1e-5) -> bool:
    """a is a tensor of b's shape and values (to atol): what a probe asks of a student's piece's output."""
    import torch  # here: the package itself is imported by every lab's tests, some without torch

    return torch.is_tensor(a) and a.shape == b.shape and bool(torch.allclose(a.float(), b.float(), atol=atol))


def wrong_pieces(ns, names, probes):
    """The names among `names` whose definition in the namespace ns differs from the reference (or fails):
    probes[name](ns) is True when it agrees. The probes leave the notebook's random stream as it was."""
    import torch  # here: the package itself is imported by every lab's tests, some without torch

    wrong = []
    for name in names:
        state = torch.random.get_rng_state()
        try:
            agrees = probes[name](ns)
        except Exception:
            agrees = False
        finally:
            torch.random.set_rng_state(state)
        if not agrees:
            wrong.append(name)
    return wrong


def the_one_wrong_piece(ns, names, probes, what):
    """The one name among `names` that differs from the reference, said to the student; None when none or
    more than one does. One slip costs its own exercise only; with two or more, too little of a repeated run
    would be the student's to judge (an untouched notebook would otherwise earn the run's points)."""
    wrong = wrong_pieces(ns, names, probes)
    if len(wrong) > 1:
        print(f"{what} misses the bar, and {', '.join(wrong)} differ from a correct answer: with more than one "
              f"earlier exercise to fix, this cell judges your own run")
    if len(wrong) != 1:
        return None
    print(f"{what} misses the bar, and {wrong[0]} differs from a correct answer (graded in its own test cell): "
          f"this cell judges the rest of your code, in the same run with a correct {wrong[0]}")
    return wrong[0]


def judged_run(ns, results, passes, names, what, run, probes, correct):
    """The notebook's values of `results`; or, when they fail passes(*values) and exactly one of `names` is
    wrong, the values of run(ns, name) with correct(name, ns) (the names to put in its place) swapped in."""
    own = tuple(ns.get(name) for name in results)
    if passes(*own):
        return own
    wrong = the_one_wrong_piece(ns, names, probes, what)
    if wrong is None:
        return own
    with swap(ns, **correct(wrong, ns)):
        return run(ns, wrong)
