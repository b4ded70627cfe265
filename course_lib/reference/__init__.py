"""The reference pieces of the labs' exercises that course_lib's models and loops are built and tested with.

Each module names the lab whose answers it holds (`ANSWERS_OF = "04_gpt"`). The instructor's install, and
the kernels that grade, have them all; `course bundle` gives a module to students only once that lab's
resubmission window has closed. Until then the lab passes its own pieces in (`GPT(config, block=Block)`,
`train_lm(..., get_batch=get_batch)`).
"""

_MISSING = object()


class swap:
    """Put these names into a namespace (the notebook's globals()) until restore(); restore() is idempotent.
    The hidden tests run a student's code this way with a reference piece in its place (see micrograd.py)."""

    def __init__(self, namespace, **names):
        self.namespace = namespace
        self.saved = {name: namespace.get(name, _MISSING) for name in names}
        namespace.update(names)

    def restore(self):
        for name, value in self.saved.items():
            if value is _MISSING:
                self.namespace.pop(name, None)
            else:
                self.namespace[name] = value
        self.saved = {}
