"""Lab 4's answers as the lab writes them: attention one head at a time (the lecture's `Head` and
`MultiHeadAttention`), the ReLU feed-forward, the pre-norm block, the language model of section 5 and the
batches. gpt.py holds the same model in its fast form (all heads in one matrix product) for course_lib.

Lab 4's hidden tests judge each exercise on its own with these: a test cell of one class puts the reference
pieces under it in the notebook's namespace (the student's class looks them up there when it runs), e.g.

    swapped = swap(globals(), causal_attention=causal_attention)   # the student's Head on a correct attention
    swapped.restore()                                                # the notebook's own names again

The training runs of sections 2, 5 and 6 use several pieces at once. When a run misses its test's bar and
exactly one earlier exercise differs from the reference here, the test repeats the run with the reference in
its place (`judged_bigram`, `judged_progression`, `judged_gpt`): a slip in one exercise costs that exercise's
points only. (The lab gives the layers of its classes; the student writes their forward passes.)
"""
import math

import torch
import torch.nn as nn
from torch.nn import functional as F

from course_lib import reference as pieces
from course_lib.reference import same_tensor as _close, swap
from course_lib.budget import budget, is_graded
from course_lib.gpt import GPT, GPTConfig
from course_lib.lm_train import RECIPES, split_loss, train_lm

ANSWERS_OF = "04_gpt"  # `course bundle` packs this module only once lab 4's window has closed


def split_train_val(data, train_fraction=0.9):
    n = int(train_fraction * len(data))
    return data[:n], data[n:]


def get_batch(data, block_size, batch_size, generator=None):
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i:i + block_size] for i in ix])
    y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])
    return x, y


def causal_attention(q, k, v, dropout=None):
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)
    weights = F.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    if dropout is not None:
        weights = dropout(weights)
    return weights @ v, weights


class Head(nn.Module):

    def __init__(self, n_embd, head_size, dropout=0.0):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        out, _ = causal_attention(self.query(x), self.key(x), self.value(x), self.dropout)
        return out


class MultiHeadAttention(nn.Module):

    def __init__(self, n_embd, n_head, dropout=0.0):
        super().__init__()
        head_size = n_embd // n_head
        self.heads = nn.ModuleList([Head(n_embd, head_size, dropout) for _ in range(n_head)])
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        out = torch.cat([h(x) for h in self.heads], dim=-1)
        return self.dropout(self.proj(out))


class FeedForward(nn.Module):

    def __init__(self, n_embd, dropout=0.0):
        super().__init__()
        self.up = nn.Linear(n_embd, 4 * n_embd)
        self.proj = nn.Linear(4 * n_embd, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.proj(F.relu(self.up(x))))


class Block(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.sa = MultiHeadAttention(config.n_embd, config.n_head, config.dropout)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.ffwd = FeedForward(config.n_embd, config.dropout)

    def forward(self, x):
        x = x + self.sa(self.ln1(x))
        return x + self.ffwd(self.ln2(x))


class LanguageModel(nn.Module):

    def __init__(self, vocab_size, block_size, n_embd, body=None):
        super().__init__()
        self.block_size = block_size
        self.token_embedding = nn.Embedding(vocab_size, n_embd)
        self.position_embedding = nn.Embedding(block_size, n_embd)
        self.body = body if body is not None else nn.Identity()
        self.lm_head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        x = self.token_embedding(idx) + self.position_embedding(torch.arange(T, device=idx.device))
        logits = self.lm_head(self.body(x))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T))

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, generator=None):
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.block_size:])
            probs = F.softmax(logits[:, -1, :], dim=-1)
            idx = torch.cat((idx, torch.multinomial(probs, num_samples=1, generator=generator)), dim=1)
        return idx


# ---- does an exercise agree with the reference? (probes on inputs of their own; any error means no)
# A module is compared with the reference's module of the same sizes carrying the same weights (the
# reference's loaded into the student's, so that one module repeated cannot hold them all), in evaluation
# mode and in training mode with the same random draws. A class is probed on the reference pieces under it.

def _same_split(fn):
    return all(torch.equal(mine, ref) for data in (torch.arange(100), torch.arange(7, 17))
               for fraction in ((), (0.8,)) for mine, ref in zip(fn(data, *fraction), split_train_val(data, *fraction)))


def _same_batches(fn):
    for data, block_size, batch_size, seed in ((torch.arange(1000, 1100), 5, 50, 1), (torch.arange(9), 8, 3, 0),
                                               (torch.arange(12), 8, 40, 5)):
        mine = fn(data, block_size, batch_size, generator=torch.Generator().manual_seed(seed))
        ref = get_batch(data, block_size, batch_size, generator=torch.Generator().manual_seed(seed))
        if not all(torch.is_tensor(m) and torch.equal(m, r) for m, r in zip(mine, ref)):
            return False
    return True


def _same_attention(fn):
    gen = torch.Generator().manual_seed(0)
    for shape in ((2, 6, 16), (3, 4, 10, 8), (1, 1, 5)):
        q, k, v = (torch.randn(*shape, generator=gen) * 2 for _ in range(3))
        if not all(_close(m, r) for m, r in zip(fn(q, k, v), causal_attention(q, k, v))):
            return False
    drop = nn.Dropout(0.5).train()
    torch.manual_seed(5)
    mine = fn(q, k, v, dropout=drop)
    torch.manual_seed(5)
    return all(_close(m, r) for m, r in zip(mine, causal_attention(q, k, v, dropout=drop)))


def _same_module(make_mine, make_ref, *inputs, prepare=None):
    """make_mine() and make_ref() built with the same weights give the same outputs, in both modes."""
    torch.manual_seed(0)
    ref = make_ref()
    if prepare is not None:
        prepare(ref)
    mine = make_mine()
    mine.load_state_dict(ref.state_dict())
    for mode in ("eval", "train"):
        getattr(mine, mode)()
        getattr(ref, mode)()
        torch.manual_seed(1)
        got = mine(*inputs)
        torch.manual_seed(1)
        if not _close(got, ref(*inputs)):
            return False
    return True


def _spread_norms(block):
    # LayerNorm gains and biases away from 1 and 0, so that each norm shows
    with torch.no_grad():
        for ln in (block.ln1, block.ln2):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.5, 0.5)


def _same_head(ns):
    with swap(ns, causal_attention=causal_attention):
        x = torch.randn(3, 5, 24, generator=torch.Generator().manual_seed(2))
        return all(_same_module(lambda: ns["Head"](24, size, p), lambda: Head(24, size, p), x)
                   for size, p in ((6, 0.0), (12, 0.3)))


def _same_multihead(ns):
    with swap(ns, Head=Head):
        x = torch.randn(3, 6, 24, generator=torch.Generator().manual_seed(3))
        return all(_same_module(lambda: ns["MultiHeadAttention"](24, n, p), lambda: MultiHeadAttention(24, n, p), x)
                   for n, p in ((3, 0.0), (4, 0.3)))


def _same_feedforward(ns):
    x = torch.randn(3, 7, 8, generator=torch.Generator().manual_seed(4))
    return all(_same_module(lambda: ns["FeedForward"](8, p), lambda: FeedForward(8, p), x) for p in (0.0, 0.4))


def _same_block(ns):
    with swap(ns, MultiHeadAttention=MultiHeadAttention, FeedForward=FeedForward):
        x = torch.randn(2, 8, 16, generator=torch.Generator().manual_seed(5)) * 2 + 1
        config = GPTConfig(n_embd=16, n_head=2, block_size=8, dropout=0.2)
        return _same_module(lambda: ns["Block"](config), lambda: Block(config), x, prepare=_spread_norms)


def _same_language_model(ns):
    cls = ns["LanguageModel"]
    config = GPTConfig(n_embd=12, n_head=3, block_size=4, dropout=0.0)
    idx = torch.randint(0, 11, (2, 4), generator=torch.Generator().manual_seed(6))
    targets = torch.randint(0, 11, (2, 5), generator=torch.Generator().manual_seed(7))[:, 1:]
    for body in (lambda: None, lambda: nn.Sequential(Block(config), nn.LayerNorm(12))):
        torch.manual_seed(0)
        ref = LanguageModel(11, 4, 12, body()).eval()
        mine = cls(11, 4, 12, body()).eval()
        mine.load_state_dict(ref.state_dict())
        for context in (idx, idx[:, :1]):
            got, want = mine(context), ref(context)
            if not (_close(got[0], want[0]) and got[1] is None):
                return False
        if not _close(mine(idx, targets)[1], ref(idx, targets)[1]):
            return False
        start = torch.tensor([[1, 2], [3, 4]])
        if not torch.equal(mine.generate(start, 7, generator=torch.Generator().manual_seed(3)),
                           ref.generate(start, 7, generator=torch.Generator().manual_seed(3))):
            return False
    return True


_PROBES = {"split_train_val": lambda ns: _same_split(ns["split_train_val"]),
           "get_batch": lambda ns: _same_batches(ns["get_batch"]),
           "causal_attention": lambda ns: _same_attention(ns["causal_attention"]),
           "Head": _same_head,
           "MultiHeadAttention": _same_multihead,
           "FeedForward": _same_feedforward,
           "Block": _same_block,
           "LanguageModel": _same_language_model}


def wrong_pieces(ns, names):
    """The names among `names` whose definition in the namespace ns differs from the reference (or fails)."""
    return pieces.wrong_pieces(ns, names, _PROBES)


def _correct(name, ns):
    """The names to swap in for a wrong piece: a wrong split also made the notebook's train and val data."""
    if name == "split_train_val":
        train_data, val_data = split_train_val(ns["data"])
        return {"split_train_val": split_train_val, "train_data": train_data, "val_data": val_data}
    return {name: globals()[name]}


# ---- section 2: the bigram at the learning rate the student chose (the notebook's cell train_bigram, with its
# given BigramLanguageModel and train_small; keep the two together)

BIGRAM_PIECES = ["split_train_val", "get_batch"]


def _passes_bigram(bigram_history, bigram_val):
    try:
        return bigram_val <= 2.56 and bigram_history.evals[-1][1]["val"] < bigram_history.evals[0][1]["val"] - 0.8
    except Exception:
        return False


def _run_bigram(ns, wrong):
    torch.manual_seed(1337)
    bigram = ns["BigramLanguageModel"](ns["vocab_size"])
    history, val = ns["train_small"](bigram, steps=1000, lr=ns["bigram_lr"])
    print(f"  that run: bigram val {val:.4f}")
    return history, val


def judged_bigram(ns):
    """(bigram_history, bigram_val): the notebook's, or when they miss the test's bar and the split or the batches
    are wrong (graded in their own cells), those of the same run, at the student's learning rate, with a correct one."""
    return pieces.judged_run(ns, ("bigram_history", "bigram_val"), _passes_bigram, BIGRAM_PIECES, "Your bigram run",
                             _run_bigram, _PROBES, _correct)


# ---- section 5: the lecture's path (the recipe of the notebook's cell progression; keep the two together)

PROGRESSION_PIECES = ["split_train_val", "get_batch", "causal_attention", "Head", "MultiHeadAttention", "FeedForward",
                      "Block", "LanguageModel"]


def _passes_progression(progression, progression_val):
    try:
        vals = list(progression_val.values())
        if not all(math.isfinite(v) for v in vals):
            return False
        if is_graded() and not vals[-1] < 3.0:
            return False
        if not is_graded() and not (vals[-1] < 2.15 and vals[1] < vals[0] and vals[-1] < vals[1] - 0.2):
            return False
        if not all(run["history"].evals[-1][1]["val"] < run["history"].evals[0][1]["val"] - 0.3
                   for run in progression.values()):
            return False
        lm = progression["3 blocks, residual + LayerNorm"]["model"].eval()
        return lm.generate(torch.zeros((1, 1), dtype=torch.long), 30, generator=torch.Generator().manual_seed(0)).shape == (1, 31)
    except Exception:
        return False


_STAGES = {  # each stage's body, and the pieces it uses besides the batches and the language model
    "embeddings + positions": (lambda ns, config: None, ()),
    "one head": (lambda ns, config: ns["Head"](config.n_embd, config.n_embd), ("causal_attention", "Head")),
    "4 heads": (lambda ns, config: ns["MultiHeadAttention"](config.n_embd, 4), ("causal_attention", "Head", "MultiHeadAttention")),
    "4 heads + feed-forward": (lambda ns, config: nn.Sequential(ns["MultiHeadAttention"](config.n_embd, 4), ns["FeedForward"](config.n_embd)),
                               ("causal_attention", "Head", "MultiHeadAttention", "FeedForward")),
    "3 blocks, residual + LayerNorm": (lambda ns, config: nn.Sequential(*[ns["Block"](config) for _ in range(3)], nn.LayerNorm(config.n_embd)),
                                       ("causal_attention", "Head", "MultiHeadAttention", "FeedForward", "Block")),
}


def _run_progression(ns, wrong):
    """The runs that use the wrong piece again (the others as the notebook has them, when it has them)."""
    config = GPTConfig(vocab_size=ns["vocab_size"], block_size=8, n_layer=3, n_head=4, n_embd=32)
    own = ns.get("progression") if isinstance(ns.get("progression"), dict) else {}
    progression = {}
    for name, (make_body, uses) in _STAGES.items():
        if name in own and wrong not in uses + ("split_train_val", "get_batch", "LanguageModel"):
            progression[name] = own[name]
            continue
        torch.manual_seed(1337)
        model = ns["LanguageModel"](ns["vocab_size"], config.block_size, config.n_embd, make_body(ns, config))
        history, val = ns["train_small"](model, budget(full=4000, graded=200))
        progression[name] = {"model": model, "history": history, "val": val,
                             "params": sum(p.numel() for p in model.parameters())}
        print(f"  that run: {name} val {val:.3f}")
    return progression, {name: run["val"] for name, run in progression.items()}


def judged_progression(ns):
    """(progression, progression_val): the notebook's, or when they miss the test's bar and one earlier exercise
    is wrong, those of the same runs with the reference in its place."""
    return pieces.judged_run(ns, ("progression", "progression_val"), _passes_progression, PROGRESSION_PIECES,
                             "Your lecture's path", _run_progression, _PROBES, _correct)


# ---- section 6: the GPT (the recipe of the notebook's cells train_gpt and test_gpt; keep the three together)

GPT_PIECES = ["split_train_val", "get_batch", "causal_attention", "Head", "MultiHeadAttention", "FeedForward", "Block"]


def _passes_gpt(ns, final_val, history):
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(0)
        gpt = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=4, n_embd=32, dropout=0.2), block=ns["Block"])
        x = torch.randint(0, 65, (2, 16))
        gpt.eval()
        if not torch.equal(gpt(x)[0], gpt(x)[0]):
            return False
        x2 = x.clone()
        x2[:, 10:] = (x2[:, 10:] + 1) % 65
        if not _close(gpt(x2)[0][:, :10], gpt(x)[0][:, :10]):
            return False
        gpt.train()
        if torch.equal(gpt(x)[0], gpt(x)[0]):
            return False
        gpt.eval()
        if gpt.generate(torch.zeros((1, 1), dtype=torch.long), 40, generator=torch.Generator().manual_seed(0)).shape != (1, 41):
            return False
        limit = RECIPES["5min"].target_val if not is_graded() else 3.0
        return (final_val <= limit and history.info["precision"] in ("bfloat16", "float32")
                and history.evals[-1][1]["val"] < history.evals[0][1]["val"] - 0.5
                and abs(history.losses[0] - math.log(65)) < 0.3)
    except Exception:
        return False
    finally:
        torch.random.set_rng_state(state)


def _run_gpt(ns):
    recipe = RECIPES["5min"]
    config = recipe.model(vocab_size=ns["vocab_size"])
    full = recipe.train()
    steps = budget(full=full.max_iters, graded=40)
    train_config = recipe.train(max_iters=steps, lr_decay_iters=steps, warmup_iters=budget(full=full.warmup_iters, graded=4),
                                eval_interval=budget(full=full.eval_interval, graded=20),
                                eval_iters=budget(full=full.eval_iters, graded=2), progress=False)
    device = ns.get("device", "cpu")
    torch.manual_seed(1337)
    model = GPT(config, block=ns["Block"])
    history = train_lm(model, ns["train_data"], ns["val_data"], train_config, device=device, get_batch=ns["get_batch"])
    final_val = split_loss(model, ns["val_data"], config.block_size, device=device)
    print(f"  that run: val {final_val:.4f} after {history.info['steps']} steps")
    return final_val, history


def judged_gpt(ns):
    """(final_val, history, swapped): the notebook's run; or, when the test would fail and exactly one earlier
    exercise is wrong, the same run with the reference in its place, which stays swapped in for the rest of
    the test cell (its checks build a GPT of the notebook's Block) until swapped.restore()."""
    own = ns.get("final_val"), ns.get("history")
    if _passes_gpt(ns, *own):
        return (*own, swap(ns))
    wrong = pieces.the_one_wrong_piece(ns, GPT_PIECES, _PROBES, "Your GPT")
    if wrong is None:
        return (*own, swap(ns))
    swapped = swap(ns, **_correct(wrong, ns))
    return (*_run_gpt(ns), swapped)
