"""course_lib.reference: how lab 6's training tests judge a run when an earlier exercise is wrong; what lab 2's
tests hand over to the student's later cells."""
import inspect

import pytest
import torch
import torch.nn.functional as F

from course_lib.reference import diffusion, makemore

PIECES = ["linear_schedule", "q_sample", "diffusion_loss", "NoisePredictor", "p_sample", "sample"]


def _unattempted(*args, **kwargs):
    raise NotImplementedError()


def _notebook(**wrong):
    """A notebook namespace with the reference pieces, these replaced, and a 1D run that missed the bar."""
    ns = {name: getattr(diffusion, name) for name in PIECES}
    ns.update(torch=torch, F=F)
    exec(inspect.getsource(diffusion.diffusion_loss), ns)  # a student's loss: it looks q_sample up in the notebook
    ns.update(wrong)
    ns.update(samples_1d=None, history_1d=None, w1_1d=9.0, left_mass_1d=0.5)
    return ns


def _bad_q_sample(x0, t, alpha_bars, noise):
    a = alpha_bars[t].reshape(-1, 1)
    return a * x0 + (1 - a) * noise  # no square roots


@pytest.fixture
def reruns(monkeypatch):
    """The runs judged_run_1d repeats, as the pieces they used (no training here)."""
    runs = []
    monkeypatch.setattr(diffusion, "_run_1d", lambda ns: runs.append({n: ns[n] for n in PIECES}) or ("rerun",) * 4)
    return runs


def test_a_wrong_piece_is_named_and_only_it():
    assert diffusion.wrong_pieces(_notebook(), PIECES) == []
    # the loss's probe runs the student's loss on the reference q_sample: a q_sample slip is not also the loss's
    assert diffusion.wrong_pieces(_notebook(q_sample=_bad_q_sample), PIECES) == ["q_sample"]
    assert diffusion.wrong_pieces(_notebook(sample=_unattempted), PIECES) == ["sample"]


def test_one_slip_is_rerun_with_the_reference_in_its_place(reruns):
    ns = _notebook(q_sample=_bad_q_sample)
    assert diffusion.judged_run_1d(ns, w1_limit=0.25) == ("rerun",) * 4
    assert len(reruns) == 1 and reruns[0]["q_sample"] is diffusion.q_sample
    assert ns["q_sample"] is _bad_q_sample  # the notebook's own name again afterwards


def test_an_untouched_or_mostly_wrong_notebook_is_judged_on_its_own_run(reruns, capsys):
    untouched = _notebook(**{name: _unattempted for name in PIECES})
    assert diffusion.judged_run_1d(untouched, w1_limit=0.25) == (None, None, 9.0, 0.5)
    two_slips = _notebook(q_sample=_bad_q_sample, p_sample=_unattempted)
    assert diffusion.judged_run_1d(two_slips, w1_limit=0.25) == (None, None, 9.0, 0.5)
    assert reruns == []
    assert "q_sample, p_sample differ" in capsys.readouterr().out


def test_what_lab_2_hands_over_reaches_no_later_answer():
    ns = {}
    makemore.use(ns, "mlp_logits", "init_mlp", "build_dataset", "count_bigrams")
    seen, todo = set(), [ns[name] for name in ns]
    while todo:  # every function reachable through the globals of what was handed over
        function = todo.pop()
        seen.add(function.__name__)
        todo += [v for v in function.__globals__.values() if callable(v) and getattr(v, "__globals__", None) is not None
                 and v.__name__ not in seen and getattr(v, "__module__", "") == makemore.__name__]
        assert "train_mlp" not in function.__globals__ and "split_loss" not in function.__globals__
    assert seen == {"mlp_logits", "mlp_init", "build_dataset", "count_bigrams"}
    X = torch.zeros(4, 3, dtype=torch.long)
    assert torch.equal(ns["mlp_logits"](ns["init_mlp"](), X), makemore.mlp_logits(makemore.mlp_init(), X))
