"""course_lib.reference: how labs 4 and 6 judge each exercise with the reference's other pieces and their
training runs when an earlier exercise is wrong; what lab 2's tests hand over to the student's later cells."""
import ast
import inspect
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from autograder.notebooks import grade_id
from autograder.planted_bugs import apply_bugs, load_bugs
from course_lib import reference
from course_lib.reference import convnets, diffusion, gpt_per_head, makemore

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


# ---- lab 4

LAB4 = Path(__file__).resolve().parents[1] / "labs" / "04_gpt" / "04_gpt.ipynb"
LAB4_EXERCISES = ["split", "get_batch", "attention", "head", "multihead", "feedforward", "block", "language_model"]


def _lab4_namespace(bugs=()):
    """The definitions of lab 4's exercise cells (the reference solution, with these bugs planted), as a
    notebook's namespace holds them."""
    nb = apply_bugs(nbformat.read(LAB4, as_version=4), list(bugs))
    ns = {}
    exec("import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
         "from course_lib.gpt import GPTConfig", ns)
    for cell in nb.cells:
        if grade_id(cell) in LAB4_EXERCISES:
            tree = ast.parse(cell.source)  # the functions and classes only: the demo lines need the data
            exec("\n\n".join(ast.get_source_segment(cell.source, node) for node in tree.body
                              if isinstance(node, (ast.FunctionDef, ast.ClassDef))), ns)
    return ns


def test_lab_4s_answers_agree_with_the_reference_and_each_planted_bug_is_its_own_piece_only():
    pieces = gpt_per_head.PROGRESSION_PIECES
    assert gpt_per_head.wrong_pieces(_lab4_namespace(), pieces) == []
    piece_of_cell = dict(zip(LAB4_EXERCISES, pieces))
    planted = [bug for bug in load_bugs("04_gpt") if bug.cell in piece_of_cell]
    assert len(planted) >= 15
    for bug in planted:
        assert gpt_per_head.wrong_pieces(_lab4_namespace([bug]), pieces) == [piece_of_cell[bug.cell]], bug.name


def _progression_namespace(bugs=(), broken=()):
    """Lab 4's namespace after a progression run that missed the bar, with a train_small that only records."""
    ns = _lab4_namespace(bugs)
    ns.update({name: _unattempted for name in broken})
    trained = []

    def train_small(model, steps):
        trained.append(type(model.body).__name__)
        return "history", 1.0
    ns.update(vocab_size=65, train_small=train_small, progression_val={"embeddings + positions": float("nan")},
              progression={name: {"val": float("nan"), "own": True} for name in gpt_per_head._STAGES})
    return ns, trained


def test_a_wrong_piece_reruns_only_the_stages_of_the_path_that_use_it():
    bug = next(b for b in load_bugs("04_gpt") if b.name == "no_residual")
    ns, trained = _progression_namespace([bug])
    progression, vals = gpt_per_head.judged_progression(ns)
    assert trained == ["Sequential"]  # the three blocks only: the other four stages are the notebook's own
    assert [run.get("own", False) for run in progression.values()] == [True] * 4 + [False]
    assert vals["3 blocks, residual + LayerNorm"] == 1.0
    assert ns["Block"] is not gpt_per_head.Block and reference.ACTIVE == []  # the notebook's own Block again
    ns, trained = _progression_namespace([next(b for b in load_bugs("04_gpt") if b.name == "positions_of_full_block")])
    gpt_per_head.judged_progression(ns)
    assert len(trained) == 5  # every stage is a LanguageModel


def test_an_untouched_lab_4_is_judged_on_its_own_runs(capsys):
    ns, trained = _progression_namespace(broken=gpt_per_head.PROGRESSION_PIECES)
    assert gpt_per_head.judged_progression(ns) == (ns["progression"], ns["progression_val"])
    ns.update(final_val=None, history=None)
    final_val, history, swapped = gpt_per_head.judged_gpt(ns)
    assert (final_val, history, swapped.saved) == (None, None, {}) and trained == []
    swapped.restore()
    assert "differ from a correct answer: with more than one" in capsys.readouterr().out


def test_a_swap_ends_with_restore_all_as_the_grader_ends_it_with_its_cell():
    ns = {"Head": "mine"}
    reference.swap(ns, Head=gpt_per_head.Head, causal_attention=gpt_per_head.causal_attention)
    with reference.swap(ns, Head="probe"):
        assert ns["Head"] == "probe"
    assert ns["Head"] is gpt_per_head.Head and len(reference.ACTIVE) == 1
    reference.restore_all()  # what course_lib.guard does when the next cell starts
    assert ns == {"Head": "mine"} and reference.ACTIVE == []


def test_a_wrong_split_reruns_the_bigram_at_the_students_learning_rate(capsys):
    bug = next(b for b in load_bugs("04_gpt") if b.name == "targets_not_shifted")
    ns = _lab4_namespace([bug])
    runs = []

    def train_small(model, steps, lr):
        runs.append((type(model).__name__, lr, ns["get_batch"] is gpt_per_head.get_batch))
        return "history", 2.5
    ns.update(vocab_size=65, train_small=train_small, BigramLanguageModel=lambda vocab: torch.nn.Linear(1, 1),
              bigram_lr=0.123, bigram_history=None, bigram_val=4.0)
    assert gpt_per_head.judged_bigram(ns) == ("history", 2.5)
    assert runs == [("Linear", 0.123, True)] and ns["get_batch"] is not gpt_per_head.get_batch
    assert "get_batch differs from a correct answer" in capsys.readouterr().out
    runs.clear()
    assert gpt_per_head.judged_bigram(_lab4_namespace() | dict(ns, get_batch=gpt_per_head.get_batch)) == (None, 4.0)
    assert runs == []  # every piece right: the notebook's own run is judged


# ---- lab 5

LAB5 = Path(__file__).resolve().parents[1] / "labs" / "05_convnets" / "05_convnets.ipynb"
LAB5_PIECE_OF_CELL = {"normalise": "normalisation", "lenet": "lenet", "evaluate": "evaluate", "convnet": "convnet",
                      "augment": "augment"}


@pytest.fixture(scope="module")
def fashion_pixels():
    from course_lib.vision import fashion_mnist

    return fashion_mnist(train=True).data, fashion_mnist(train=False).data


def _lab5_namespace(pixels, bugs=()):
    """The definitions of lab 5's exercise cells (the reference solution, with these bugs planted) and the
    normalisation's statistics, as a notebook's namespace holds them."""
    nb = apply_bugs(nbformat.read(LAB5, as_version=4), list(bugs))
    ns = {"X_train_u8": pixels[0], "X_test_u8": pixels[1]}
    exec("import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
         "from course_lib.device import autocast", ns)
    for cell in nb.cells:
        if grade_id(cell) in LAB5_PIECE_OF_CELL:
            tree = ast.parse(cell.source)  # definitions, and the statistics (the rest needs the whole notebook)
            exec("\n\n".join(ast.get_source_segment(cell.source, node) for node in tree.body
                              if isinstance(node, (ast.FunctionDef, ast.ClassDef))), ns)
            statistics = "\n".join(ast.get_source_segment(cell.source, node) for node in tree.body
                                    if isinstance(node, ast.Assign) and "pixel" in ast.unparse(node.targets[0]))
            if statistics not in _LAB5_STATISTICS:  # once per version of the cell: they read all 60,000 images
                scratch = dict(ns)
                exec(statistics, scratch)
                _LAB5_STATISTICS[statistics] = {k: v for k, v in scratch.items() if k not in ns}
            ns.update(_LAB5_STATISTICS[statistics])
    return ns


_LAB5_STATISTICS = {}  # the normalisation cell's statistics lines -> the names they set


def test_lab_5s_answers_agree_with_the_reference_and_each_planted_bug_is_its_own_piece_only(fashion_pixels):
    names = list(LAB5_PIECE_OF_CELL.values())
    assert convnets.wrong_pieces(_lab5_namespace(fashion_pixels), names) == []
    planted = [bug for bug in load_bugs("05_convnets") if bug.cell in LAB5_PIECE_OF_CELL]
    assert len(planted) >= 10
    for bug in planted:
        assert convnets.wrong_pieces(_lab5_namespace(fashion_pixels, [bug]), names) == \
            [LAB5_PIECE_OF_CELL[bug.cell]], bug.name


def _lenet_run_namespace(pixels, bugs=(), broken=()):
    """Lab 5's namespace after a LeNet run that missed the bar, with a train() that only records what it used."""
    ns = _lab5_namespace(pixels, bugs)
    ns.update({name: _unattempted for name in broken})
    runs = []

    class History:
        losses = [2.3] + [0.3] * 60

    def train(model, epochs, lr):
        runs.append((ns["lenet"] is convnets.lenet, ns["evaluate"] is convnets.evaluate, lr))
        return History()
    ns.update(train=train, lenet_lr=0.004, lenet_history=History(), lenet_test={"acc": 0.1},
              X_test=torch.zeros(10, 1, 28, 28), y_test=torch.zeros(10, dtype=torch.long), device=torch.device("cpu"))
    return ns, runs


def test_a_wrong_lenet_reruns_its_training_at_the_students_learning_rate(fashion_pixels):
    bug = next(b for b in load_bugs("05_convnets") if b.name == "lenet_without_padding")
    ns, runs = _lenet_run_namespace(fashion_pixels, [bug])
    history, test = convnets.judged_lenet(ns)
    assert runs == [(True, False, 0.004)] and set(test) == {"loss", "acc"}  # the reference lenet, the notebook's evaluate
    assert ns["lenet"] is not convnets.lenet and reference.ACTIVE == []


def test_a_wrong_normalisation_reruns_on_inputs_normalised_correctly(fashion_pixels):
    bug = next(b for b in load_bugs("05_convnets") if b.name == "pixels_not_scaled")
    ns, runs = _lenet_run_namespace(fashion_pixels, [bug])
    ns["y_test"] = torch.zeros(len(fashion_pixels[1]), dtype=torch.long)  # the rerun evaluates on the whole test set
    seen = {}
    ns["train"] = lambda model, epochs, lr: seen.update(X_tr=ns["X_tr"], mean=ns["pixel_mean"]) or type("H", (), {})()
    convnets.judged_lenet(ns)
    assert abs(seen["mean"] - convnets.PIXEL_MEAN) < 1e-9 and abs(float(seen["X_tr"].mean())) < 0.02
    assert "X_tr" not in ns  # swapped in for the run only


def test_an_untouched_lab_5_is_judged_on_its_own_runs(fashion_pixels, capsys):
    ns, runs = _lenet_run_namespace(fashion_pixels, broken=["lenet", "evaluate", "convnet", "augment", "to_input"])
    assert convnets.judged_lenet(ns) == (ns["lenet_history"], ns["lenet_test"])
    ns.update(model=None, history=None, convnet_acc=0.1)
    assert convnets.judged_convnet(ns) == (None, None, 0.1) and runs == []
    assert "differ from a correct answer: with more than one" in capsys.readouterr().out
