"""A faster scalar autograd engine with the same interface and arithmetic as the lab's `Value`.

The lab's engine (micrograd's design) stores a closure `_backward` in every node. The closure refers
to `out`, and `out` refers to the closure: every node sits in a reference cycle, so a step's graph is
only freed by Python's cyclic garbage collector, which keeps walking the ever-growing heap while the
graph is being built. Here each node stores instead its children and the local derivative with
respect to each child, computed during the forward pass. Nodes refer only to their children, the
graph has no cycles, and reference counting frees it the moment the loss goes out of scope; the
cyclic collector can be switched off during a step (`no_cyclic_gc`). `__slots__` makes nodes smaller
and faster to build, and the topological sort is an explicit loop instead of recursion.

Each operation performs the same floating-point operations as the lab's engine, in the same order,
so both engines compute the same numbers.
"""
import contextlib
import gc
import math
import random


class Value:
    """A scalar, the Values it was computed from, and d(self)/d(child) for each of them."""

    __slots__ = ("data", "grad", "_prev", "_local")

    def __init__(self, data, _children=(), _local=()):
        self.data = float(data)
        self.grad = 0.0
        self._prev = _children  # the children
        self._local = _local    # d(self)/d(child), same order as _prev

    def __repr__(self):
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"

    def __add__(self, other):
        if type(other) is not Value:
            other = Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other):
        if type(other) is not Value:
            other = Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, k):
        assert isinstance(k, (int, float)), "only int or float powers are supported"
        return Value(self.data ** k, (self,), (k * self.data ** (k - 1),))

    def exp(self):
        e = math.exp(self.data)
        return Value(e, (self,), (e,))

    def tanh(self):
        t = math.tanh(self.data)
        return Value(t, (self,), (1 - t ** 2,))

    def relu(self):
        if self.data > 0:
            return Value(self.data, (self,), (1.0,))
        return Value(0.0, (self,), (0.0,))

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def __truediv__(self, other):
        return self * other ** -1

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def __rsub__(self, other):
        return other + (-self)

    def __rtruediv__(self, other):
        return other * self ** -1

    def topological_order(self):
        """Children before parents, each node once: the post-order of a depth-first search, as a loop."""
        topo = []
        visited = {self}
        stack = [(self, 0)]
        while stack:
            node, i = stack[-1]
            prev = node._prev
            if i < len(prev):
                stack[-1] = (node, i + 1)
                child = prev[i]
                if child not in visited:
                    visited.add(child)
                    stack.append((child, 0))
            else:
                stack.pop()
                topo.append(node)
        return topo

    def backward(self):
        topo = self.topological_order()
        self.grad = 1.0
        for node in reversed(topo):
            g = node.grad
            for child, local in zip(node._prev, node._local):
                child.grad += local * g


@contextlib.contextmanager
def no_cyclic_gc():
    """Switch the cyclic garbage collector off: this engine's graphs are freed by reference counting."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Module:
    def zero_grad(self):
        for p in self.parameters():
            p.grad = 0.0

    def parameters(self):
        return []


class Neuron(Module):
    def __init__(self, nin, nonlin=True):
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self):
        return self.w + [self.b]


class Layer(Module):
    def __init__(self, nin, nout, **kwargs):
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x):
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]


class MLP(Module):
    def __init__(self, nin, nouts):
        sizes = [nin] + nouts
        self.layers = [Layer(sizes[i], sizes[i + 1], nonlin=i != len(nouts) - 1) for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


def loss_fn(model, X, y, alpha=1e-4):
    scores = [model([Value(xi) for xi in row]) for row in X]
    losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = alpha * sum(p * p for p in model.parameters())
    accuracy = sum((yi > 0) == (si.data > 0) for yi, si in zip(y, scores)) / len(y)
    return data_loss + reg_loss, accuracy


def train_step(model, X, y, lr):
    with no_cyclic_gc():
        loss, accuracy = loss_fn(model, X, y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad
        result = loss.data, accuracy
        del loss  # free the graph by reference counting while the collector is still off
    return result
