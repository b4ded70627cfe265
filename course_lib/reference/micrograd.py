"""Lab 1's answers: the centred difference (`slope_centred`), the perceptron of the extras (`perceptron`,
`train_perceptron`, `two_layer`), micrograd's engine (`Value`) and its neural network (`MLP`, `loss_fn`), as in
the lab's reference solution (after Karpathy's micrograd, engine.py and nn.py).

Lab 1's hidden tests judge each exercise on its own with these: a test of the MLP, the loss, the training
step, the x^2 fit or the gradient check runs the student's code with this `Value` (and, where the test says
so, this `MLP` and `loss_fn`) in place of the notebook's, so a slip in the engine costs the engine's points
only. The student's classes and functions look `Value` up in the notebook's namespace when they run, so
swapping the name there is enough:

    engine = swap(globals(), Value=Value)   # ... the student's code now builds reference Values ...
    engine.restore()                        # the notebook's own names again
"""
import math
import random

from course_lib.reference import swap  # noqa: F401 (the hidden tests call micrograd.swap)

ANSWERS_OF = "01_micrograd"  # `course bundle` packs this module only once lab 1's window has closed


def slope_centred(f, x, h=1e-6):
    """(f(x + h) - f(x - h)) / (2h)."""
    return (f(x + h) - f(x - h)) / (2 * h)


def perceptron(w, b, x):
    """1 if w . x + b > 0, else 0."""
    return 1 if sum(wi * xi for wi, xi in zip(w, x)) + b > 0 else 0


def train_perceptron(X, d, epochs, lr=1.0):
    """Rosenblatt's rule from w = 0, b = 0: (w, b, mistakes), mistakes[k] the wrong outputs of epoch k."""
    w, b = [0.0] * len(X[0]), 0.0
    mistakes = []
    for _ in range(epochs):
        wrong = 0
        for x, target in zip(X, d):
            error = target - perceptron(w, b, x)
            if error != 0:
                wrong += 1
                w = [wi + lr * error * xi for wi, xi in zip(w, x)]
                b += lr * error
        mistakes.append(wrong)
        if wrong == 0:
            break
    return w, b, mistakes


def two_layer(x, W1, b1, w2, b2):
    """Hidden step units h_j = perceptron(W1[j], b1[j], x) feeding one output step unit."""
    h = [perceptron(wj, bj, x) for wj, bj in zip(W1, b1)]
    return perceptron(w2, b2, h)


class Value:
    """A scalar that remembers how it was computed, so that gradients can flow back through it."""

    def __init__(self, data, _children=(), _op="", label=""):
        self.data = float(data)
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = tuple(_children)
        self._op = _op
        self.label = label

    def __repr__(self):
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, k):
        assert isinstance(k, (int, float)), "only int or float powers are supported"
        out = Value(self.data ** k, (self,), f"**{k}")

        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad
        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward():
            self.grad += (1 - t ** 2) * out.grad
        out._backward = _backward
        return out

    def relu(self):
        out = Value(self.data if self.data > 0 else 0.0, (self,), "relu")

        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward
        return out

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
        topo, visited = [], set()

        def visit(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    visit(child)
                topo.append(v)

        visit(self)
        return topo

    def backward(self):
        topo = self.topological_order()
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()


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
    """(mean max-margin loss + alpha * sum of squared parameters as a Value, accuracy as a float)."""
    scores = [model([Value(xi) for xi in row]) for row in X]
    losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = alpha * sum(p * p for p in model.parameters())
    accuracy = sum((yi > 0) == (si.data > 0) for yi, si in zip(y, scores)) / len(y)
    return data_loss + reg_loss, accuracy


def with_methods_of(student_value, names):
    """A reference Value class with the student's own versions of these methods (those their class defines):
    judges, say, the student's __rsub__ with a correct + and * underneath."""
    own = {name: student_value.__dict__[name] for name in names if name in getattr(student_value, "__dict__", {})}
    return type("Value", (Value,), own)

