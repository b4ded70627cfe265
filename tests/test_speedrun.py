"""What changed since GPT-2 (course_lib's speedrun options): each option does what it says, and with every
option off the classic model trains exactly as before."""
import math

import pytest
import torch
from torch.nn import functional as F

from course_lib import lm_train
from course_lib.gpt import GPT, GPTConfig, rotary_tables, rotate
from course_lib.lm_train import RECIPES, Muon, TrainConfig, learning_rate_at, newton_schulz
from course_lib.reference.gpt import Block, CausalSelfAttention, FeedForward, get_batch

TINY = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
# the losses of this file's classic run, made by course_lib before the options existed (commit d91c693), on the
# 2-core AVX2 development machine: float.hex of each step's loss
CLASSIC_LOSSES = ['0x1.31d9c00000000p+1', '0x1.31a15a0000000p+1', '0x1.336aea0000000p+1', '0x1.2bd9700000000p+1', '0x1.273bd40000000p+1', '0x1.20a13c0000000p+1', '0x1.1aca780000000p+1', '0x1.14bd620000000p+1', '0x1.1158220000000p+1', '0x1.0c04f20000000p+1', '0x1.08484a0000000p+1', '0x1.0381c20000000p+1', '0x1.ff5c9a0000000p+0', '0x1.f89b260000000p+0', '0x1.f0087e0000000p+0', '0x1.e9e8e40000000p+0', '0x1.e5fd620000000p+0', '0x1.de07d40000000p+0', '0x1.d90bce0000000p+0', '0x1.d5f3dc0000000p+0', '0x1.d0c1560000000p+0', '0x1.cfb1800000000p+0', '0x1.cc79e00000000p+0', '0x1.ca6f640000000p+0', '0x1.c807020000000p+0', '0x1.c3f62c0000000p+0', '0x1.c4acd60000000p+0', '0x1.c3f8580000000p+0', '0x1.c3b9020000000p+0', '0x1.c486c80000000p+0']


def tiny_model(seed=0, **kw):
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY, **kw}), block=Block)


def _stream():
    pattern = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    return pattern.repeat(150), pattern.repeat(15)


def _classic_config(**kw):
    return TrainConfig(**{**dict(max_iters=30, lr_decay_iters=30, warmup_iters=5, batch_size=8, eval_interval=10,
                                 eval_iters=4, learning_rate=3e-3, progress=False, precision="fp32"), **kw})


def test_every_option_off_trains_the_classic_model_bit_for_bit():
    train, val = _stream()
    history = lm_train.train_lm(tiny_model(), train, val, _classic_config(), get_batch=get_batch)
    explicit_off = tiny_model(rotary=False, qk_norm=False, activation="gelu", tied_head=True, zero_init_proj=False)
    history_off = lm_train.train_lm(explicit_off, train, val, _classic_config(schedule="cosine", optimizer="adamw"),
                                    get_batch=get_batch)
    assert history.losses == history_off.losses
    expected = [float.fromhex(h) for h in CLASSIC_LOSSES]
    if history.losses != expected:  # another CPU may round its matrix products differently: then only near
        assert history.losses == pytest.approx(expected, rel=1e-5)


def test_rotary_attention_scores_depend_only_on_relative_position():
    cos, sin = rotary_tables(32, 8)
    q, k = torch.randn(8), torch.randn(8)
    at = lambda x, t: rotate(x.expand(32, 8), cos, sin)[t]  # x placed at position t
    for shift in (1, 5, 20):
        assert torch.allclose(at(q, 7) @ at(k, 3), at(q, 7 + shift) @ at(k, 3 + shift), atol=1e-5)
    assert not torch.allclose(at(q, 7) @ at(k, 3), at(q, 7) @ at(k, 5), atol=1e-3)
    assert torch.allclose(at(q, 9).norm(), q.norm(), atol=1e-5)  # a rotation: lengths unchanged
    model = tiny_model(rotary=True)
    assert model.position_embedding is None and "position_embedding.weight" not in model.state_dict()


def test_attention_with_rotary_and_qk_norm_stays_causal():
    torch.manual_seed(0)
    attention = CausalSelfAttention(GPTConfig(**TINY, rotary=True, qk_norm=True)).eval()
    x = torch.randn(1, 8, 16)
    future = x.clone()
    future[:, 5:] += 1
    assert torch.allclose(attention(future)[:, :5], attention(x)[:, :5], atol=1e-6)
    assert not torch.allclose(attention(future)[:, 5:], attention(x)[:, 5:], atol=1e-3)


def test_qk_norm_makes_attention_blind_to_the_scale_of_queries_and_keys():
    config = GPTConfig(**TINY, qk_norm=True)
    torch.manual_seed(0)
    attention = CausalSelfAttention(config).eval()
    x = torch.randn(2, 8, 16)
    before = attention(x)
    with torch.no_grad():
        attention.qkv.weight[:32] *= 10.0  # queries and keys ten times larger; values unchanged
    assert torch.allclose(attention(x), before, atol=1e-5)
    plain = CausalSelfAttention(GPTConfig(**TINY))
    plain.load_state_dict(attention.state_dict())
    assert not torch.allclose(plain(x), before, atol=1e-3)


def test_relu2_is_relu_squared():
    torch.manual_seed(0)
    ff = FeedForward(GPTConfig(**TINY, activation="relu2"))
    x = torch.randn(3, 5, 16)
    assert torch.allclose(ff(x), ff.proj(F.relu(ff.up(x)) ** 2))
    with pytest.raises(ValueError, match="activation"):
        FeedForward(GPTConfig(**TINY, activation="swish"))


def test_untied_head_has_its_own_zero_weights_and_starts_at_ln_vocab():
    model = tiny_model(tied_head=False)
    assert model.lm_head.weight is not model.token_embedding.weight and not model.lm_head.weight.any()
    _, loss = model(torch.randint(11, (2, 8)), torch.randint(11, (2, 8)))
    assert loss.item() == pytest.approx(math.log(11), abs=1e-6)


def test_zero_init_projections_make_every_block_start_as_the_identity():
    model = tiny_model(zero_init_proj=True)
    projections = [p for name, p in model.named_parameters() if name.endswith("proj.weight")]
    assert len(projections) == 4 and not any(p.any() for p in projections)
    x = torch.randn(2, 8, 16)
    assert all(torch.equal(block(x), x) for block in model.blocks)


def test_newton_schulz_orthogonalises_within_its_tolerance():
    G = torch.randn(48, 16, generator=torch.Generator().manual_seed(0)) @ torch.diag(torch.logspace(-1, 1, 16))
    singular = torch.linalg.svdvals(newton_schulz(G))
    assert torch.linalg.svdvals(G).max() / torch.linalg.svdvals(G).min() > 50  # very unequal directions ...
    assert singular.min() > 0.6 and singular.max() < 1.25, singular  # ... all moved by about as much
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)
    assert F.cosine_similarity(newton_schulz(G).flatten(), (U @ Vh).flatten(), dim=0) > 0.95


def test_muon_step_is_an_orthogonal_update_scaled_by_lr():
    weight = torch.nn.Parameter(torch.randn(16, 32))
    start = weight.detach().clone()
    weight.grad = torch.randn(16, 32)
    Muon([weight], lr=0.1, momentum=0.0, nesterov=False).step()
    update = (start - weight.detach()) / 0.1
    assert torch.allclose(update, newton_schulz(weight.grad), atol=1e-6)
    singular = torch.linalg.svdvals(update)
    assert singular.min() > 0.6 and singular.max() < 1.25


def test_muon_takes_the_hidden_matrices_and_trains_and_resumes(tmp_path):
    model = tiny_model(tied_head=False)
    optimizer = lm_train.make_optimizer(model, TrainConfig(optimizer="muon"), torch.device("cpu"))
    muon, adamw = optimizer.optimizers
    in_muon = {id(p) for g in muon.param_groups for p in g["params"]}
    names = {n for n, p in model.named_parameters() if id(p) in in_muon}
    assert names == {n for n, p in model.named_parameters() if n.startswith("blocks.") and p.dim() == 2}
    train, val = _stream()
    config = _classic_config(optimizer="muon", muon_lr=0.05, schedule="wsd", max_iters=60, lr_decay_iters=60,
                             eval_interval=20)
    history = lm_train.train_lm(tiny_model(tied_head=False, rotary=True), train, val, config, get_batch=get_batch)
    assert history.last("val") < 1.0 < history.evals[0][1]["val"], history.evals
    assert 0 < history.info["train_seconds"] <= history.info["seconds"]
    checkpoint = str(tmp_path / "ckpt.pt")
    lm_train.train_lm(tiny_model(rotary=True), train, val, _classic_config(**{**config.__dict__, "max_iters": 40,
                      "checkpoint": checkpoint}), get_batch=get_batch)
    resumed = lm_train.train_lm(tiny_model(seed=3, rotary=True), train, val,
                                _classic_config(**{**config.__dict__, "checkpoint": checkpoint}), get_batch=get_batch)
    assert len(resumed.losses) == 60


def test_warmup_stable_decay_schedule():
    c = TrainConfig(schedule="wsd", learning_rate=1e-3, min_lr=1e-4, warmup_iters=10, lr_decay_iters=100,
                    cooldown_frac=0.4)
    assert learning_rate_at(5, c) == pytest.approx(5e-4)
    assert learning_rate_at(10, c) == learning_rate_at(59, c) == learning_rate_at(60, c) == 1e-3
    assert learning_rate_at(80, c) == pytest.approx(5.5e-4) and learning_rate_at(100, c) == pytest.approx(1e-4)
    assert learning_rate_at(150, c) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="schedule"):
        learning_rate_at(0, TrainConfig(schedule="linear"))


def test_speedrun_recipe_switches_every_option_on():
    recipe = RECIPES["speedrun"]
    model, train = recipe.model(vocab_size=65), recipe.train()
    assert (model.rotary, model.qk_norm, model.activation, model.tied_head, model.zero_init_proj) == \
        (True, True, "relu2", False, True)
    assert (train.optimizer, train.schedule) == ("muon", "wsd") and recipe.target_val == 1.89
    assert RECIPES["cpu"].model().rotary is False and RECIPES["cpu"].train().optimizer == "adamw"
