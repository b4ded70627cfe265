"""Lab 2's answers: the vocabulary, the splits, the bigram counts and their NLL, the neural bigram, and the
MLP of Bengio et al. (2003), as in the lab's reference solution (after Karpathy's makemore, parts 1 and 2).

Lab 2's hidden tests judge each exercise on its own with these: a test cell first binds the names its checks
read that earlier exercises made (`stoi`, `xs`, `N`, `Xtr`, `mlp_logits`, ...) to the reference's, then runs
the student's function of this exercise on them, so a slip in the vocabulary or the counts costs that
exercise's points only. The names stay bound, so later cells also start from correct inputs:

    _reference.use(globals(), "stoi", "itos", "xs", "ys")   # the reference's vocabulary and bigrams
"""
import builtins
import random
import types

import torch
import torch.nn.functional as F

ANSWERS_OF = "02_makemore"  # `course bundle` packs this module only once lab 2's window has closed


def vocabulary(words):
    """stoi and itos: '.' is 0, the letters 1 to 26 in alphabetical order."""
    chars = sorted(set("".join(words)))
    stoi = {ch: i + 1 for i, ch in enumerate(chars)}
    stoi["."] = 0
    return stoi, {i: ch for ch, i in stoi.items()}


def split_words(words, seed=42):
    shuffled = list(words)
    random.Random(seed).shuffle(shuffled)
    n1, n2 = int(0.8 * len(shuffled)), int(0.9 * len(shuffled))
    return shuffled[:n1], shuffled[n1:n2], shuffled[n2:]


def bigram_pairs(words, stoi):
    xs, ys = [], []
    for w in words:
        chs = ["."] + list(w) + ["."]
        for ch1, ch2 in zip(chs, chs[1:]):
            xs.append(stoi[ch1])
            ys.append(stoi[ch2])
    return torch.tensor(xs, dtype=torch.long), torch.tensor(ys, dtype=torch.long)


def count_bigrams(xs, ys, vocab_size=27):
    N = torch.zeros((vocab_size, vocab_size), dtype=torch.long)
    N.index_put_((xs, ys), torch.ones_like(xs), accumulate=True)
    return N


def bigram_probs(N, alpha=0.0):
    P = (N + alpha).float()
    return P / P.sum(1, keepdim=True)


def average_nll(P, xs, ys):
    return -P[xs, ys].log().mean()


def bigram_logits(W, xs):
    return F.one_hot(xs, num_classes=W.shape[0]).float() @ W


def nll_from_logits(logits, ys):
    return F.cross_entropy(logits, ys)


def train_bigram_net(xs, ys, steps, lr=50.0, reg=0.0, seed=2147483647):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn((27, 27), generator=g).to(xs.device).requires_grad_()
    losses = []
    for _ in range(steps):
        loss = nll_from_logits(bigram_logits(W, xs), ys) + reg * (W ** 2).mean()
        W.grad = None
        loss.backward()
        with torch.no_grad():
            W -= lr * W.grad
        losses.append(loss.item())
    return W, losses


def build_dataset(words, stoi, block_size=3):
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X, dtype=torch.long), torch.tensor(Y, dtype=torch.long)


def mlp_init(vocab_size=27, block_size=3, n_embd=10, n_hidden=200, seed=2147483647):
    # Lab 2's given init_mlp (bound under that name by use()): every entry from N(0, 1), the plain initialisation
    # whose trouble lab 2 shows and lab 3 fixes. Named apart from lab 3's init_mlp, which is an answer.
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(vocab_size, n_embd, generator=g),
              torch.randn(block_size * n_embd, n_hidden, generator=g),
              torch.randn(n_hidden, generator=g),
              torch.randn(n_hidden, vocab_size, generator=g),
              torch.randn(vocab_size, generator=g)]
    for p in params:
        p.requires_grad_()
    return params


def mlp_logits(params, X):
    C, W1, b1, W2, b2 = params
    h = torch.tanh(C[X].view(X.shape[0], -1) @ W1 + b1)
    return h @ W2 + b2


def train_mlp(params, X, Y, steps, batch_size, lr_at, seed=2147483647):
    g = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        ix = torch.randint(0, X.shape[0], (batch_size,), generator=g).to(X.device)
        loss = F.cross_entropy(mlp_logits(params, X[ix]), Y[ix])
        for p in params:
            p.grad = None
        loss.backward()
        lr = lr_at(step)
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
        losses.append(loss.item())
    return losses


@torch.no_grad()
def split_loss(params, X, Y):
    return F.cross_entropy(mlp_logits(params, X), Y).item()


FUNCTIONS = {f.__name__: f for f in (split_words, bigram_pairs, count_bigrams, bigram_probs, average_nll,
                                     bigram_logits, nll_from_logits, train_bigram_net, build_dataset,
                                     mlp_logits, train_mlp, split_loss)}
FUNCTIONS["init_mlp"] = mlp_init
_data = {}


def data():
    """The notebook's data as the reference computes it (once per kernel): vocabulary, splits, bigrams, counts,
    tables, NLL over all names and the MLP's datasets."""
    if not _data:
        from ..data import load_names

        words = load_names()
        stoi, itos = vocabulary(words)
        train_words, dev_words, test_words = split_words(words)
        xs, ys = bigram_pairs(words, stoi)
        N = count_bigrams(xs, ys)
        P, P1 = bigram_probs(N), bigram_probs(N, alpha=1.0)
        Xtr, Ytr = build_dataset(train_words, stoi)
        Xdev, Ydev = build_dataset(dev_words, stoi)
        Xte, Yte = build_dataset(test_words, stoi)
        _data.update(stoi=stoi, itos=itos, vocab_size=27, train_words=train_words, dev_words=dev_words,
                     test_words=test_words, xs=xs, ys=ys, N=N, P=P, P1=P1, nll_all=float(average_nll(P, xs, ys)),
                     Xtr=Xtr, Ytr=Ytr, Xdev=Xdev, Ydev=Ydev, Xte=Xte, Yte=Yte)
    return _data


def use(namespace, *names):
    """Bind these names in the notebook's globals() to the reference's functions or data (copies of the
    tensors and lists, so that what a student's code does to them cannot reach the next test)."""
    for name in names:
        if name in FUNCTIONS:
            namespace[name] = _detached(FUNCTIONS[name], {})
        elif name in data():
            value = data()[name]
            namespace[name] = value.clone() if isinstance(value, torch.Tensor) else \
                type(value)(value) if isinstance(value, (list, dict)) else value
        else:
            raise KeyError(f"course_lib.reference.makemore has no {name!r}")


def _detached(function, done):
    """A copy of function whose globals hold only the names its code reads (functions of this module detached
    in turn): the student's later cells get the pieces a test hands over, not, through __globals__, the rest
    of this module (the answers of exercises not graded yet)."""
    if function in done:
        return done[function]
    namespace = {"__builtins__": builtins, "__name__": __name__}
    copy = done[function] = types.FunctionType(function.__code__, namespace, function.__name__,
                                                 function.__defaults__, function.__closure__)
    copy.__kwdefaults__, copy.__doc__, copy.__qualname__ = function.__kwdefaults__, function.__doc__, function.__qualname__
    codes, read = [function.__code__], set()
    while codes:
        code = codes.pop()
        read.update(code.co_names)
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    for name in read & set(globals()):
        value = globals()[name]
        own = isinstance(value, types.FunctionType) and value.__module__ == __name__
        namespace[name] = _detached(value, done) if own else value
    return copy
