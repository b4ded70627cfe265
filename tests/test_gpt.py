"""course_lib.gpt and course_lib.lm_train on tiny models: causality, generation, batches, schedule,
precision choice, checkpoint resume."""
import math
import types

import pytest
import torch

from course_lib import lm_train
from course_lib.gpt import GPT, GPTConfig
from course_lib.lm_train import RECIPES, TrainConfig, autocast_dtype, learning_rate_at
from course_lib.reference.gpt import Block, get_batch

TINY = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)


def tiny_model(seed=0, **kw):
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY.__dict__, **kw}), block=Block)


def train_lm(*args, get_batch=get_batch, **kw):
    """course_lib's loop, with the reference batches unless told otherwise (lab 4 passes its own)."""
    return lm_train.train_lm(*args, get_batch=get_batch, **kw)


def test_future_tokens_do_not_change_earlier_logits():
    model = tiny_model().eval()
    idx = torch.randint(11, (3, 8))
    changed = idx.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 11
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6)
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_initial_loss_is_near_log_vocab_and_output_is_tied_to_the_embedding():
    model = tiny_model()
    idx, targets = torch.randint(11, (4, 8)), torch.randint(11, (4, 8))
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(11)) < 0.2
    assert model.lm_head.weight is model.token_embedding.weight


def test_generate_crops_the_context_and_is_seeded():
    model = tiny_model().eval()
    start = torch.zeros((1, 1), dtype=torch.long)
    a = model.generate(start, 20, generator=torch.Generator().manual_seed(1))
    b = model.generate(start, 20, generator=torch.Generator().manual_seed(1))
    assert a.shape == (1, 21) and torch.equal(a, b)
    with pytest.raises(ValueError, match="longer than block_size=8"):
        model(torch.zeros((1, 9), dtype=torch.long))


def test_a_lab_block_plugs_into_the_model():
    class Identity(torch.nn.Module):
        def __init__(self, config):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(config.n_embd))

        def forward(self, x):
            return x * self.scale

    model = GPT(TINY, block=Identity)
    assert len(model.blocks) == 2 and all(isinstance(b, Identity) for b in model.blocks)
    assert model(torch.zeros((2, 4), dtype=torch.long))[0].shape == (2, 4, 11)


def test_get_batch_targets_are_inputs_shifted_by_one():
    data = torch.arange(100)
    x, y = get_batch(data, 8, 5, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 8)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)
    assert int(y.max()) < 100


def test_learning_rate_warms_up_then_decays_to_min_lr():
    c = TrainConfig(learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, lr_decay_iters=2000)
    assert learning_rate_at(0, c) == 0 and learning_rate_at(50, c) == pytest.approx(5e-4)
    assert learning_rate_at(100, c) == pytest.approx(1e-3)
    assert learning_rate_at(1050, c) == pytest.approx(5.5e-4)
    assert learning_rate_at(2000, c) == pytest.approx(1e-4) and learning_rate_at(5000, c) == 1e-4


def test_precision_choice(monkeypatch):
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "fp32") is None and autocast_dtype(cpu, "bf16") is torch.bfloat16
    monkeypatch.setattr(lm_train, "cpu_has_native_bf16", lambda: False)
    assert autocast_dtype(cpu) is None
    monkeypatch.setattr(lm_train, "cpu_has_native_bf16", lambda: True)
    assert autocast_dtype(cpu) is torch.bfloat16
    assert autocast_dtype(torch.device("mps")) is None
    with pytest.raises(ValueError, match="precision must be"):
        autocast_dtype(cpu, "fp16")


def _data():
    g = torch.Generator().manual_seed(0)
    pattern = torch.randperm(11, generator=g)
    return pattern.repeat(150), pattern.repeat(15)  # each token has one successor: easy to learn


def _config(**kw):
    return TrainConfig(**{**dict(max_iters=60, lr_decay_iters=60, warmup_iters=5, batch_size=8, eval_interval=20,
                                 eval_iters=4, learning_rate=3e-3, progress=False), **kw})


def test_training_learns_a_repeating_stream_and_bf16_matches_fp32():
    train, val = _data()
    final = {}
    for precision in ("fp32", "bf16"):
        history = train_lm(tiny_model(), train, val, _config(precision=precision, max_iters=150, lr_decay_iters=150,
                                                             learning_rate=1e-2))
        assert [s for s, _ in history.evals] == [0, 20, 40, 60, 80, 100, 120, 140, 150]
        assert history.evals[0][1]["val"] > 2.0 and history.last("val") < 0.2, history.evals
        assert history.info["precision"] == ("float32" if precision == "fp32" else "bfloat16")
        assert len(history.losses) == 150 and history.info["tokens_per_s"] > 0
        final[precision] = history.last("val")
    assert abs(final["bf16"] - final["fp32"]) < 0.05, final


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    train, val = _data()
    straight = tiny_model()
    full = train_lm(straight, train, val, _config(precision="fp32"))
    checkpoint = str(tmp_path / "ckpt.pt")
    first = tiny_model()
    train_lm(first, train, val, _config(precision="fp32", max_iters=40, lr_decay_iters=60, checkpoint=checkpoint))
    resumed_model = tiny_model(seed=5)  # different weights: they must come from the checkpoint
    resumed = train_lm(resumed_model, train, val, _config(precision="fp32", checkpoint=checkpoint))
    assert [s for s, _ in resumed.evals] == [s for s, _ in full.evals]
    assert resumed.losses == pytest.approx(full.losses, rel=1e-5)
    for a, b in zip(straight.parameters(), resumed_model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert not (tmp_path / "ckpt.pt.part").exists()


def test_a_time_budget_shortens_the_run_and_compresses_the_schedule(monkeypatch):
    # a fake clock on which every batch drawn (training or evaluation) takes one second
    now = [0.0]

    def slow_get_batch(*args, **kw):
        now[0] += 1.0
        return get_batch(*args, **kw)

    monkeypatch.setattr(lm_train, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    train, val = _data()
    history = train_lm(tiny_model(), train, val, _config(precision="fp32", max_iters=1000, lr_decay_iters=1000,
                                                         max_seconds=200), get_batch=slow_get_batch)
    planned = history.info["planned_iters"]
    assert 100 < planned < 150, planned  # about 1 s per step plus 8 s per evaluation every 20 steps
    assert history.evals[-1][0] == planned and len(history.losses) == planned
    assert history.info["seconds"] <= 200
    assert history.info["config"]["max_iters"] == 1000  # the caller's config is not changed


def test_the_time_budget_is_planned_again_when_steps_slow_down(monkeypatch):
    # a fake clock on which the first 30 training batches take 0.5 s and every later one 2 s (a machine that
    # got busy): planned from the first steps alone, the run took 755 s for a budget of 200
    now, drawn = [0.0], [0]

    def slowing_get_batch(*args, **kw):
        drawn[0] += 1
        now[0] += 0.5 if drawn[0] <= 30 else 2.0
        return get_batch(*args, **kw)

    monkeypatch.setattr(lm_train, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    monkeypatch.setattr(lm_train, "estimate_loss", lambda *a, **k: {"train": 1.0, "val": 1.0})  # evaluations: free
    train, val = _data()
    history = train_lm(tiny_model(), train, val, _config(precision="fp32", max_iters=1000, lr_decay_iters=1000,
                                                         max_seconds=200), get_batch=slowing_get_batch)
    assert 150 <= history.info["seconds"] <= 220, history.info
    assert history.info["planned_iters"] == len(history.losses) == history.evals[-1][0]


def test_shortened_schedule_still_decays_to_min_lr():
    from course_lib.lm_train import _shortened

    config = _config(max_iters=1000, lr_decay_iters=1000, warmup_iters=10)
    short = _shortened(config, 100)
    assert (short.max_iters, short.lr_decay_iters, short.warmup_iters) == (100, 100, 10)
    assert learning_rate_at(100, short) == pytest.approx(short.min_lr)
    assert _shortened(config, 5000) is config


def test_keep_best_ends_with_the_weights_of_the_best_evaluation(monkeypatch):
    scripted_val = iter([3.0, 2.0, 1.5, 2.5, 2.8])  # the best at the third evaluation, step 40
    weights_at = {}

    def scripted_estimate(model, splits, *args, **kw):
        weights_at[len(weights_at) * 20] = {k: v.clone() for k, v in model.state_dict().items()}
        return {"train": 1.0, "val": next(scripted_val)}

    monkeypatch.setattr(lm_train, "estimate_loss", scripted_estimate)
    train, val = _data()
    model = tiny_model()
    history = train_lm(model, train, val, _config(precision="fp32", max_iters=80, lr_decay_iters=80, keep_best=True))
    assert (history.info["best_step"], history.info["best_val"]) == (40, 1.5)
    final = model.state_dict()
    assert all(torch.equal(final[k], weights_at[40][k]) for k in final)
    assert not all(torch.equal(final[k], weights_at[80][k]) for k in final)


def test_recipes_build_their_configs():
    cpu = RECIPES["cpu"]
    model, train = cpu.model(vocab_size=65), cpu.train()
    assert (model.n_layer, model.n_head, model.n_embd, model.block_size, model.dropout) == (4, 4, 128, 64, 0.0)
    assert (train.max_iters, train.batch_size, train.eval_iters, train.learning_rate) == (2000, 12, 20, 1e-3)
    assert (train.beta2, train.weight_decay, train.grad_clip, train.warmup_iters) == (0.99, 0.1, 1.0, 100)
    five = RECIPES["5min"]
    assert five.target_val < cpu.target_val and five.train().max_seconds == 300
    gpu = RECIPES["gpu"]
    assert (gpu.model().n_layer, gpu.model().n_embd, gpu.model().block_size) == (6, 384, 256)
    assert gpu.train().keep_best and gpu.train().batch_size == 64


def test_fused_and_explicit_attention_compute_the_same_model():
    fused, explicit = tiny_model(attention="fused").eval(), tiny_model(attention="explicit").eval()
    explicit.load_state_dict(fused.state_dict())
    idx, targets = torch.randint(11, (3, 8)), torch.randint(11, (3, 8))
    (a, loss_a), (b, loss_b) = fused(idx, targets), explicit(idx, targets)
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(loss_a, loss_b, atol=1e-6)
