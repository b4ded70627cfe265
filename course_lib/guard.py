"""Kernel-state integrity for grading (the autograder and `course check` call it; harmless elsewhere).

The grader drives a student's kernel from outside. Besides the student's cells it sends:
- at every kernel start, before any student code, `snapshot(key_file)`: it records what checks and
  IPython's own machinery rely on, and reads (then deletes) the key that signs its reports;
- before every test cell, `restore_and_verify(nonce)`: it puts back whatever student code changed,
  reports it and runs canary computations;
- after each locked cell of given code, `protect(bindings, nonce)`: the functions, classes and modules
  that cell bound (imports, helpers the tests call) are put back before every test cell;
- as the last statement of every test cell, `completed(nonce)`: proof that the test code ran to its
  end, called from the test cell itself, with nothing changed while it ran.

Each report is one line signed with the key, which is gone before student code runs: a missing or
forged report costs the test cell its points. The snapshot runs in a private copy of this module,
so replacing this module's functions or classes changes nothing but the names the grader calls,
whose fakes cannot sign.

Watched: every function and class (with its methods) of every installed module, from the moment its
import ends; in the core (builtins, math, json, the import system, IPython, ipykernel, jupyter_client,
zmq, comm, traitlets, course_lib, numpy, torch) any change, elsewhere only student code put in. Also
the shell's and the kernel's own methods and message handlers; event callbacks, input and AST
transformers, custom exception handlers; sys hooks (displayhook, stdout, trace and profile functions,
import hooks); the names locked given cells bound. An audit hook refuses swaps of a library function's
code or defaults. A library that wraps its own function on first use (functools.wraps) is not
tampering.

The answers (course_lib.reference's modules, which the hidden tests use) exist only while a test cell runs:
the grader unlocks them for that one cell (its code name and a signed one-time token, in
`restore_and_verify`); at every other cell the audit hook refuses to import them or open their files, their
modules are put away (a test cell gets back those it imports) and the notebook's names bound to them are
removed. docs/threat-model.md says what this does not stop.
"""
import builtins
import gc
import importlib
import importlib.abc
import math
import os
import sys
import threading
from functools import partial
from itertools import chain
from operator import is_, methodcaller
from os.path import basename, isfile, realpath
from types import BuiltinFunctionType, BuiltinMethodType, FunctionType, MethodType, ModuleType

import _hashlib

# The private copy binds everything it uses when the snapshot is taken, before any student code: what
# student code later does to os.path, functools, types or builtins does not change how the guard judges.
_getframe, _modules = sys._getframe, sys.modules

MARKER = "__COURSE_GUARD__"
FIELD, ITEM, SIGNATURE = "\x1f", "\x1a", "\x19"  # separate a report line's parts (never line breaks, as \x1c-\x1e are)
_MACHINERY = ("builtins", "math", "json", "importlib", "_frozen_importlib", "_frozen_importlib_external", "IPython",
              "ipykernel", "jupyter_client", "zmq", "comm", "traitlets", "course_lib")
_LAZY = ("numpy", "torch")  # core, though imported only when a notebook needs them (then seeded too)
_STRICT = ("builtins", "math", "numpy", "torch")  # even their data (math.pi, numpy.inf) may not change
_VOLATILE = ("builtins", "sys", "course_lib.asserts")  # change at every execution (input, excepthook, CELL_NONCE)
# set by IPython and ipykernel around every execution: not the student's doing
_PER_EXECUTION = {"builtins": {"input", "raw_input", "getpass", "display", "get_ipython", "exit", "quit", "_", "__", "___"},
                  "kernel": {"_save_getpass", "_sys_raw_input", "_sys_eval_input", "_parent_ident", "_parents"},
                  "shell.displayhook": {"_", "__", "___"},  # the last results shown
                  "shell": {"sys_excepthook"}}  # IPython swaps sys.excepthook around every execution
_MISSING = object()

_state = None   # the snapshot (in the private copy)
_trusted = ()   # folders of installed code (see _trusted_dirs)
_trusted_files = {}  # file name -> whether it is installed code
_seed = None    # the current cell's seed
_answers = None  # course_lib.reference's lock (in the private copy)


def snapshot(key_file=None):
    """Record the kernel's state, in a private copy of this module no student code imports."""
    private = {"__name__": __name__ + "._private", "__file__": __file__, "__builtins__": dict(vars(builtins))}
    with open(__file__, encoding="utf-8") as f:
        exec(compile(f.read(), __file__, "exec"), private)
    public = _modules[__name__]
    for name in ("restore_and_verify", "protect", "completed", "seed"):
        setattr(public, name, private[name])
    private["_take_snapshot"](key_file)


# ------------------------------------------------------------------------------------ what is whose

def _is(value, kinds) -> bool:
    """isinstance without asking the object its __class__ (some libraries' objects warn when asked)."""
    return issubclass(type(value), kinds)


def _core(name: str) -> bool:
    """The machinery a test result passes through: any change to its code is tampering."""
    return any(name == m or name.startswith(m + ".") for m in _MACHINERY + _LAZY)


def _watched(name: str) -> bool:
    """Every library module is watched; outside the core, only for student code put into it."""
    module = _modules.get(name)
    if not _is(module, ModuleType) or "__main__" in (name, getattr(module, "__name__", None)) \
            or name.startswith("course_lib.guard"):  # the user's namespace is the student's
        return False
    if getattr(getattr(module, "__spec__", None), "_initializing", False) and name != getattr(_state, "imported", None):
        return False  # still being imported: watched once its code has run
    path = getattr(module, "__file__", None)
    return path is None or _trusted_file(path)


def _is_behaviour(value) -> bool:
    """Code rather than data: functions, methods, classes, modules, descriptors (properties, traits)."""
    if _is(value, (int, float, complex, str, bytes, type(None))):
        return False
    return callable(value) or _is(value, ModuleType) or hasattr(type(value), "__get__")


def _functions(value, depth=0):
    """The Python functions a callable (or an instance of a class) would run."""
    if depth > 3:
        return []
    if _is(value, MethodType):
        return _functions(value.__func__, depth + 1)
    if _is(value, FunctionType):
        return [value]
    if _is(value, partial):
        return [f for part in (value.func, *value.args, *value.keywords.values()) if callable(part)
                for f in _functions(part, depth + 1)]
    if _is(value, (staticmethod, classmethod)):
        return _functions(value.__func__, depth + 1)
    if _is(value, property):
        return [f for part in (value.fget, value.fset, value.fdel) if part for f in _functions(part, depth + 1)]
    if value is None or _is(value, (BuiltinFunctionType, BuiltinMethodType, ModuleType,
                                           int, float, str, bytes, tuple, list, dict)):
        return []
    cls = value if _is(value, type) else type(value)
    return [f for klass in cls.__mro__ if klass.__module__ != "builtins"
            for attr in vars(klass).values() if _is(attr, (FunctionType, staticmethod, classmethod, property))
            for f in _functions(attr, depth + 1)]


def _trusted_code(filename: str, module_name) -> bool:
    """Code from an installed file, or generated by library code (namedtuple, dataclass); not from a cell.

    Cells compile to file names that are no installed file; code that a library generates with exec
    has a name like "<string>" and the library's globals, unlike code a cell runs through exec.
    """
    if filename.startswith("<"):
        return module_name not in (None, "__main__")
    known = _trusted_files.get(filename)
    if known is None:  # remembered: a library's files do not move (and student code cannot write where they are)
        path = realpath(filename)
        known = _trusted_files[filename] = path.startswith(_trusted) and isfile(path)
    return known


def _trusted_file(filename: str) -> bool:
    return filename.startswith("<frozen ") or _trusted_code(filename, None)


def _untrusted(value) -> bool:
    """Defined in the notebook (or in a file that student code wrote), not in an installed library."""
    return any(not _trusted_code(f.__code__.co_filename, f.__globals__.get("__name__")) for f in _functions(value))


def _decorates(new, old) -> bool:
    """new is library code wrapping old (functools.wraps): a library decorating its own function on first use, as
    torch wraps an optimizer's step when the first one is made, or torch._dynamo wraps torch.manual_seed."""
    if old is _MISSING or new is _MISSING or _untrusted(new):
        return False
    for _ in range(8):
        new = getattr(new, "__wrapped__", None)
        if new is None:
            return False
        if _same(new, old):
            return True
    return False


def _identity(value):
    return (id(value.__func__), id(value.__self__)) if _is(value, MethodType) else id(value)


def _same(a, b) -> bool:
    """The same object, or the same method of the same object (a bound method is made anew at each access)."""
    return a is b or (_is(a, MethodType) and _is(b, MethodType) and a.__func__ is b.__func__
                      and a.__self__ is b.__self__)


# ------------------------------------------------------------------------------------ what is watched

class _Namespace:
    """The attributes of one module, class or object (with its traits), as they were at the snapshot."""

    def __init__(self, label, owner, kind, core=True):
        self.label, self.owner, self.kind = label, owner, kind  # kind: module, class or instance
        self.core = core  # else only student code put in counts (libraries may rebind their own functions)
        self.strict = kind == "module" and label in _STRICT
        self.ignored = _PER_EXECUTION.get(label, set()) | (_ANSWER_MODULES if label == _ANSWERS else set())
        # looked at one by one, not in the bulk comparison: their values change at every execution
        self.volatile = kind == "instance" or label in _VOLATILE
        self._remember(self._read())

    def _read(self):
        values = dict(vars(self.owner))
        if self.kind == "instance":
            values.update(getattr(self.owner, "_trait_values", None) or {})
        return values

    def _remember(self, values):
        """Keep the values, and in lists what the fast comparisons (done in C, by identity) need."""
        self.saved, self.keys, self.values = values, list(values), list(values.values())

    def _inherited(self, key):
        """What a class gets for key from its bases (what a library wrapping a method on a subclass wraps)."""
        bases = self.owner.__mro__[1:] if self.kind == "class" else ()
        return next((vars(base)[key] for base in bases if key in vars(base)), _MISSING)

    def _shadows(self, key):
        """An instance attribute over a method of its class, or a class attribute over one of a base class."""
        if self.kind == "instance":
            return _is_behaviour(getattr(type(self.owner), key, None))
        return self.kind == "class" and any(key in vars(base) for base in self.owner.__mro__[1:])

    def check(self, restore, library=False):
        """What changed (put back if restore). library: the changes were made while a library was being
        imported, so only student code put in counts (the library's own code may set up other modules)."""
        now = self._read()
        if len(now) == len(self.keys) and list(now) == self.keys and all(map(is_, now.values(), self.values)):
            return []
        changed = []
        saved = dict(self.saved)
        strict = (self.core or self.strict) and not library
        for key in set(saved) | set(now):
            old, new = saved.get(key, _MISSING), now.get(key, _MISSING)
            if _same(old, new) or key in self.ignored or _decorates(new, old if old is not _MISSING else self._inherited(key)):
                pass
            elif old is _MISSING:  # added since the snapshot: a library's lazy import, or student code
                if _is_behaviour(new) and (self._shadows(key) and not library or _untrusted(new)):
                    changed.append(f"{self.label}.{key}")
                    if restore:
                        self._delete(key)
                    continue
            elif self.strict and not library or (_is_behaviour(old) or _is_behaviour(new)) and (strict or _untrusted(new)):
                changed.append(f"{self.label}.{key}")
                if restore:
                    self._put(key, old)
                continue
            # unchanged, set by the kernel itself, data the library keeps (counters, caches), a library's addition
            if new is _MISSING:
                saved.pop(key, None)
            else:
                saved[key] = new
        if restore or not changed:
            live = self._read()  # in the live order, which the bulk comparison relies on
            self._remember({**{k: saved[k] for k in live if k in saved}, **saved})
        return changed

    def _put(self, key, value):
        if value is _MISSING:
            return self._delete(key)
        traits = getattr(self.owner, "_trait_values", None) if self.kind == "instance" else None
        try:
            if traits is not None and key in traits and key not in vars(self.owner):
                traits[key] = value
            else:
                setattr(self.owner, key, value)
        except (AttributeError, TypeError):
            pass

    def _delete(self, key):
        traits = getattr(self.owner, "_trait_values", None) if self.kind == "instance" else None
        try:
            if self.kind == "instance" and key in vars(self.owner):
                del vars(self.owner)[key]
            elif traits is not None and key in traits:
                del traits[key]
            else:
                delattr(self.owner, key)
        except (AttributeError, TypeError, KeyError):
            pass


def _module_namespaces(module, classes):
    """The module's namespace and those of the classes it defines (whose methods can be replaced); classes:
    the ids of classes watched already (a class another module also holds is watched once)."""
    core = _core(module.__name__)
    spaces = [_Namespace(module.__name__, module, "module", core)]
    for key, value in list(vars(module).items()):
        if _is(value, type) and id(value) not in classes and getattr(value, "__module__", None) == module.__name__ \
                and not value.__flags__ & (1 << 8):  # Py_TPFLAGS_IMMUTABLETYPE: C types cannot be patched
            classes.add(id(value))
            spaces.append(_Namespace(f"{module.__name__}.{key}", value, "class", core))
    return spaces


class _Hooks:
    """A list, tuple or dict of hooks (transformers, callbacks, handlers, finders) of the kernel.

    Hooks a library adds are kept; hooks defined in student code are removed; a hook that was there
    at the snapshot and was replaced or removed is put back.
    """

    def __init__(self, label, owner, attr, key=None):
        self.label, self.owner, self.attr, self.key = label, owner, attr, key
        self.saved = self._items()

    def _container(self):
        container = getattr(self.owner, self.attr)
        return container.get(self.key, []) if self.key is not None else container

    def _items(self):
        container = self._container()
        return list(container.items()) if isinstance(container, dict) else [(None, v) for v in container or ()]

    def check(self, restore, library=False):
        now = self._items()
        if len(now) == len(self.saved) and all(a[0] == b[0] and _same(a[1], b[1]) for a, b in zip(now, self.saved)):
            return []
        saved = {(k, _identity(v)) for k, v in self.saved}
        current = {(k, _identity(v)) for k, v in now}
        changed = [] if library else [f"{self.label} (lost {_name(k, v)})" for k, v in self.saved if (k, _identity(v)) not in current]
        keep = [(k, v) for k, v in self.saved if not library or (k, _identity(v)) in current]
        for k, v in now:
            if (k, _identity(v)) in saved:
                continue
            if _untrusted(v) or (not library and k is not None and any(k == s for s, _ in self.saved)):
                changed.append(f"{self.label} (added {_name(k, v)})")
            else:
                keep.append((k, v))  # a library registered it
        if not changed:
            self.saved = keep
        elif restore:
            self._write(keep)
            self.saved = keep
        return changed

    def _write(self, items):
        container = self._container()
        if isinstance(container, dict):
            container.clear()
            container.update(items)
        elif isinstance(container, list):
            container[:] = [v for _, v in items]
        elif self.key is not None:
            getattr(self.owner, self.attr)[self.key] = [v for _, v in items]
        else:
            setattr(self.owner, self.attr, type(container)(v for _, v in items))


def _name(key, value):
    what = getattr(value, "__qualname__", type(value).__name__)
    return f"{key}: {what}" if key is not None else what


class _Value:
    """One value read and written through functions (sys.settrace, sys.stdout, _modules[...], a name)."""

    def __init__(self, label, get, put):
        self.label, self.get, self.put = label, get, put
        self.saved = get()

    def check(self, restore, library=False):
        now = self.get()
        if _same(now, self.saved):
            return []
        if library and not _untrusted(now):
            self.saved = now
            return []
        if restore:
            self.put(self.saved)
        return [self.label]


# ------------------------------------------------------------------------------------ the snapshot

class _Snapshot:
    def __init__(self, sign):
        self.sign = sign
        self.stdout = sys.stdout  # reports go here, whatever student code does to sys.stdout
        self.watches = {}    # a module's name, "@shell" or "@sys" -> its watches
        self.bulk = None     # the module and class namespaces, for the fast comparison
        self.protected = {}  # user-namespace name -> _Given
        self.classes = set()  # ids of the classes watched
        self.pending = []     # changes found (and put back) at imports, not reported yet
        self.importing = 0    # how deep in imports the kernel is now
        self.busy = False     # the guard itself is at work (its own imports are not the student's)
        self.imported = None  # the module whose import just ended
        for name in list(_modules):
            self.add_module(name)
        shell = _shell()
        if shell is not None:
            self.watches["@shell"] = _shell_watches(shell)
        sys_hooks = [_Value(f"sys.{name}", partial(getattr, sys, name), partial(setattr, sys, name))
                     for name in ("displayhook", "stdout", "stderr", "breakpointhook", "unraisablehook")]
        sys_hooks += [_Value("sys.settrace", sys.gettrace, sys.settrace), _Value("sys.setprofile", sys.getprofile, sys.setprofile),
                      _Value("threading.settrace", lambda: threading._trace_hook, threading.settrace),
                      _Value("threading.setprofile", lambda: threading._profile_hook, threading.setprofile),
                      _Hooks("sys.meta_path", sys, "meta_path"), _Hooks("sys.path_hooks", sys, "path_hooks"),
                      _Hooks("gc.callbacks", gc, "callbacks")]
        self.watches["@sys"] = sys_hooks

    def add_module(self, name, late=False):
        """Watch a module; late: first seen after student code ran, so what it holds now may be student code."""
        module = _modules.get(name)
        if name in self.watches or not _watched(name) or not _is(module, ModuleType):
            return []
        spaces = _module_namespaces(module, self.classes)
        self.watches[name] = [_Value(f"sys.modules[{name!r}]", partial(_modules.get, name),
                                     partial(_modules.__setitem__, name))] + spaces
        if not late:
            return []
        return [f"{space.label}.{key} (already replaced when first seen)" for space in spaces
                for key, value in space.saved.items() if _is_behaviour(value) and _untrusted(value)]

    def check(self, restore=True, library=False):
        self.busy = True
        try:
            return self._check(restore, library)
        finally:
            self.busy = False

    def report(self, restore):
        """Everything changed since the last report (put back if restore), those found at imports included."""
        changed = self.pending + self.check(restore)
        self.pending = []
        return changed

    def import_starts(self):
        """A top-level import begins: what student code changed before it is put back (and kept to report),
        so that the import cannot lend it a library's good name."""
        self.pending += self.check(restore=True)

    def import_ends(self, name):
        """A top-level import ended: what the library set up while importing is its own, except student code."""
        self.imported = name  # its code has run, though the import system has not said so yet
        try:
            trusted = _watched(name)
            self.pending += self.check(restore=True, library=trusted)
        finally:
            self.imported = None

    def _check(self, restore, library):
        changed = []
        for name in [n for n in list(_modules) if n not in self.watches and _watched(n)]:
            changed += self.add_module(name, late=not library)  # imported since the last check
        away = _answers.stash if _answers is not None else {}
        watches = [w for name, ws in list(self.watches.items()) if name not in away for w in ws] + list(self.protected.values())
        spaces = [w for w in watches if type(w) is _Namespace and not w.volatile]
        if self.bulk is None or self.bulk.spaces != spaces:
            self.bulk = _Bulk(spaces)
        suspects = self.bulk.suspects()
        for watch in watches:
            if type(watch) is _Namespace and not watch.volatile and watch not in suspects:
                continue
            try:
                changed += watch.check(restore, library)
            except Exception as exc:  # a strange object must never stop the guard: report it
                changed.append(f"{watch.label} (unreadable: {type(exc).__name__})")
        if suspects:
            self.bulk = _Bulk(spaces)
        return changed


class _Bulk:
    """Every module and class namespace at once, compared by identity in C (a few ms where a Python loop
    over thousands of namespaces takes 100 ms); only those where something differs are looked at closely."""

    def __init__(self, spaces):
        self.spaces = spaces
        self.owners = [space.owner for space in spaces]
        self.sizes = [len(space.keys) for space in spaces]
        self.values = [v for space in spaces for v in space.values]

    def suspects(self) -> list:
        """The namespaces that may have changed since the last look (none, almost always)."""
        dicts = list(map(vars, self.owners))
        sizes = list(map(len, dicts))
        if sizes == self.sizes and all(map(is_, chain.from_iterable(map(methodcaller("values"), dicts)), self.values)):
            return []
        return [space for space, now, size in zip(self.spaces, dicts, sizes)  # rare: find them one by one
                if size != len(space.keys) or not all(map(is_, now.values(), space.values))]


def _shell_watches(shell):
    kernel = getattr(shell, "kernel", None)
    objects = {"shell": shell, "shell.compile": shell.compile, "shell.events": shell.events,
               "shell.input_transformer_manager": shell.input_transformer_manager,
               "shell.display_pub": shell.display_pub, "shell.displayhook": shell.displayhook,
               "shell.InteractiveTB": shell.InteractiveTB, "shell.SyntaxTB": shell.SyntaxTB}
    if kernel is not None:
        objects.update({"kernel": kernel, "kernel.session": kernel.session})
    watches = [_Namespace(label, obj, "instance") for label, obj in objects.items()]
    manager = shell.input_transformer_manager
    watches += [_Hooks("shell.ast_transformers", shell, "ast_transformers"),
                _Hooks("shell.input_transformers_post", shell, "input_transformers_post"),
                _Hooks("shell.input_transformers_cleanup", manager, "cleanup_transforms"),
                _Hooks("shell.input_transformer_manager.line_transforms", manager, "line_transforms"),
                _Hooks("shell.input_transformer_manager.token_transformers", manager, "token_transformers"),
                _Hooks("shell.custom_exceptions", shell, "custom_exceptions")]
    watches += [_Hooks(f"shell.events[{event!r}]", shell.events, "callbacks", key=event) for event in list(shell.events.callbacks)]
    if kernel is not None:
        watches += [_Hooks("kernel.shell_handlers", kernel, "shell_handlers"),
                    _Hooks("kernel.control_handlers", kernel, "control_handlers")]
    return watches


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _trusted_dirs():
    """Where installed code lives: the interpreter's and its environment's folders, course_lib; never the
    working directory or the temporary folder (student code can write there, and cells are compiled there)."""
    import sysconfig
    import tempfile

    untrusted = [realpath(p) for p in (os.getcwd(), tempfile.gettempdir())]
    candidates = list(sysconfig.get_paths().values()) + [sys.prefix, sys.base_prefix, os.path.dirname(__file__)]
    candidates += [p for p in sys.path if p and os.path.isdir(p)]
    dirs = set()
    for path in map(realpath, candidates):
        if path == os.sep or any(path == u or path.startswith(u + os.sep) or u.startswith(path + os.sep) for u in untrusted):
            continue
        dirs.add(path.rstrip(os.sep) + os.sep)
    return tuple(sorted(dirs))


def _quietly(function, *args):
    try:  # the guard must never break a student's import
        function(*args)
    except Exception:
        pass


class _RecordAfterImport(importlib.abc.MetaPathFinder):
    """Watches every module from its import on: before a top-level import, what student code changed is put
    back; after it, what the library set up (in its own modules or others) is taken as the library's."""

    def find_spec(self, name, path, target=None):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is None:
                continue
            loader = spec.loader  # an instance per module (the built-in and frozen importers are classes: left alone)
            if loader is not None and not _is(loader, type) and hasattr(loader, "exec_module"):
                run = loader.exec_module

                def exec_module(module, run=run, name=name):
                    if _state is None:  # the snapshot is being taken
                        return run(module)
                    outermost = _state.importing == 0 and not _state.busy
                    if outermost:
                        _quietly(_state.import_starts)
                    _state.importing += 1
                    try:
                        run(module)
                    finally:
                        _state.importing -= 1
                    if outermost:
                        _quietly(_state.import_ends, name)
                    if name in _LAZY and _seed is not None:  # imported inside a cell: seeded as if imported before
                        _quietly(_seed_module, name)

                loader.exec_module = exec_module
            return spec
        return None


# ------------------------------------------------------------------------------------ the answers

_ANSWERS = "course_lib.reference"  # its modules hold the labs' answers (the package itself only `swap`)
_ANSWERS_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")
_ANSWER_MODULES = frozenset(name[:-3] for name in (os.listdir(_ANSWERS_FOLDER) if os.path.isdir(_ANSWERS_FOLDER) else ())
                            if name.endswith(".py") and name != "__init__.py")
_ANSWER_EVENTS = ("exec", "import", "open")


def _is_answers(name) -> bool:
    return _is(name, str) and name.startswith(_ANSWERS + ".")


class _Answers:
    """course_lib.reference's modules while student code runs: they cannot be imported, their files cannot be
    opened, and the modules a test cell imported are out of sys.modules, of the package and of the notebook's
    names. `unlock` (restore_and_verify, with the grader's signed one-time token for the test cell's source)
    lets the next code to run, which must be that cell's, import them; the first code of any other cell puts
    them away again. While a module is away its watches rest (its absence is not the student's doing).
    Functions a test hands to later cells on purpose (lab 2's `use`) stay where the test put them."""

    def __init__(self, shell):
        self.shell = shell
        self.code_name = getattr(getattr(shell, "compile", None), "get_code_name", None)  # before student code
        self.open = None      # the code name of the test cell they are open for
        self.expected = None  # the code name of the cell that may run next, after an unlock
        self.used = set()     # a token is good once
        self.stash = {}       # module name -> module, put away
        self.files = set()    # (device, inode) of every file of course_lib/reference
        for root, _, files in os.walk(_ANSWERS_FOLDER):
            for name in files:
                _quietly(self._add_file, os.path.join(root, name))
        self.busy = False
        self.put_away()

    def _add_file(self, path):
        st = os.stat(path)
        self.files.add((st.st_dev, st.st_ino))

    def unlock(self, nonce, source, token):
        if token in self.used or token != _state.sign(f"answers{FIELD}{nonce}{FIELD}{source}") or self.code_name is None:
            return
        self.used.add(token)
        self.expected = self.code_name(source, source, self.shell.execution_count)
        self._clear()  # what student code put under their names: the test imports the real ones

    def audit(self, event, args):
        if self.busy:
            return
        self.busy = True
        try:
            if event == "exec":
                self._turn(getattr(args[0], "co_filename", None))
            elif self.open is None:
                if event == "import" and _is_answers(args[0]) or event == "open" and self._is_file(args[0]):
                    raise (ImportError if event == "import" else PermissionError)(
                        f"graded run: {args[0] if event == 'import' else 'this file'} holds the lab's answers, "
                        "which only the grader's tests may use")
            elif event == "import" and args[0] in self.stash:  # the test cell imports one that was put away
                self._bring_back(args[0])
        finally:
            self.busy = False

    def _is_file(self, path) -> bool:
        if not _is(path, (str, bytes)) and not hasattr(path, "__fspath__"):
            return False  # a file descriptor
        try:
            st = os.stat(path)
        except (OSError, TypeError, ValueError):
            return False
        return (st.st_dev, st.st_ino) in self.files

    def _turn(self, filename):
        """Code starts to run: the cell the answers were unlocked for may import them; the code of any other
        cell (a request's code, which the kernel compiles under a name of its own) puts them away. Code that a
        cell compiles itself (exec, a library's generated code) changes nothing."""
        mark = self.expected or self.open
        if mark is None or not _is(filename, str):
            return
        if filename == mark:
            self.open, self.expected = mark, None
            return
        folder = os.path.dirname(mark)
        if os.path.dirname(filename) == folder if folder else filename.startswith("<ipython-input-"):
            self.open = self.expected = None
            self.put_away()

    def put_away(self):
        package = _modules.get(_ANSWERS)
        if package is not None:  # a test cell's swaps end with it, even where a failed assert skipped restore()
            _quietly(getattr(package, "restore_all", None))
        for name in [n for n in list(_modules) if _is_answers(n)]:
            self.stash[name] = _modules.pop(name)
        self._clear()
        namespace = getattr(self.shell, "user_ns", None) or {}
        for name, value in list(namespace.items()):
            if _is(value, ModuleType) and _is_answers(getattr(value, "__name__", None)):
                del namespace[name]

    def _clear(self):
        """No answer module in sys.modules (those there now are student code's) nor on the package."""
        for name in [n for n in list(_modules) if _is_answers(n)]:
            del _modules[name]
        package = _modules.get(_ANSWERS)
        for attribute in _ANSWER_MODULES:
            if package is not None and attribute in vars(package):
                delattr(package, attribute)

    def _bring_back(self, name):
        module = _modules[name] = self.stash.pop(name)
        package = _modules.get(_ANSWERS)
        if package is not None and name.count(".") == 2:
            setattr(package, name.rsplit(".", 1)[1], module)


# ------------------------------------------------------------------------------------ the calls (private copy)

def _take_snapshot(key_file):
    global _state, _trusted, _answers
    key = b""
    if key_file:
        with open(key_file, "rb") as f:
            key = f.read()
        os.unlink(key_file)
    digest = _hashlib.hmac_digest  # taken now, before student code could replace it

    def sign(text, key=key, digest=digest):
        return digest(key, text.encode(), "sha256").hex()

    _trusted = _trusted_dirs()
    sys.meta_path.insert(0, _RecordAfterImport())
    _state = _Snapshot(sign)
    _answers = _Answers(_shell())
    sys.addaudithook(_audit)


def _audit(event, args):
    """Student code may not swap the code (or defaults) of a library function in place: Python reports each such
    assignment to audit hooks (and an audit hook cannot be removed), so it is refused where it happens, and
    noted for the next report. It also keeps the answers locked (see _Answers)."""
    if event in _ANSWER_EVENTS:
        return _answers.audit(event, args)
    if event != "object.__setattr__" or type(args[0]) is not FunctionType or args[1] not in _CODE_PARTS:
        return
    target, caller = args[0], _getframe(1)
    if _untrusted(target) or _trusted_code(caller.f_code.co_filename, caller.f_globals.get("__name__")) \
            and not caller.f_globals.get("__name__", "").startswith(_MONKEYPATCHERS):
        return
    _state.pending.append(f"{target.__module__}.{target.__qualname__}.{args[1]}")
    raise RuntimeError(f"graded run: replacing the {args[1]} of {target.__module__}.{target.__qualname__} is not allowed")


_MONKEYPATCHERS = ("unittest.mock",)  # library code whose job is to patch for its caller
_CODE_PARTS = ("__code__", "__defaults__", "__kwdefaults__")


def _report(kind, nonce, *lists):
    """One signed line: kind, nonce, then lists of words (what was replaced, ...), on the original stdout."""
    text = FIELD.join([kind, nonce] + [ITEM.join(str(item).translate(_PLAIN) for item in items) for items in lists])
    out = _state.stdout
    shell = _shell()
    if hasattr(out, "set_parent") and hasattr(shell, "parent_header"):
        out.set_parent(shell.parent_header)  # ipykernel tells only the current sys.stdout which request this is
    out.write(f"{MARKER}{text}{SIGNATURE}{_state.sign(text)}\n")
    out.flush()


_PLAIN = {ord(c): " " for c in (FIELD, ITEM, SIGNATURE, "\n", "\r")}


def _student_frames(skip):
    """Student code on the call stack of the cell that called the guard (a wrapper around IPython's machinery)."""
    cell = _getframe(skip)
    if cell.f_code.co_name != "<module>":  # called from a function, not from the cell itself
        return [f"{cell.f_code.co_name} ({basename(cell.f_code.co_filename)})"]
    found, frame = [], cell.f_back
    while frame is not None:
        if not _trusted_code(frame.f_code.co_filename, frame.f_globals.get("__name__")):
            found.append(f"{frame.f_code.co_name} ({basename(frame.f_code.co_filename)})")
        frame = frame.f_back
    return found


def restore_and_verify(nonce, source=None, token=None):
    """Before a test cell: put everything back, run canaries; one signed line. With the grader's token for
    the test cell's source, the answers open for that cell."""
    stack = _student_frames(2)
    replaced = _state.report(restore=True)
    if source is not None:
        _answers.unlock(nonce, source, token)
    checks = _checks_told(nonce)
    _report("state", nonce, replaced, _canaries(nonce, checks), stack)


def _checks_told(nonce):
    """course_lib.asserts (watched like the rest: what student code changed in it was just put back),
    told the nonce its Credit reports carry."""
    checks = importlib.import_module("course_lib.asserts")
    checks.CELL_NONCE = nonce
    return checks


def protect(bindings, nonce):
    """After a locked cell of given code: the names it bound, [name, module, attribute] (module and attribute
    where an import bound it), are put back before every test cell. One signed line."""
    namespace = _shell().user_ns
    changed = []
    for name, module, attribute in bindings:
        value = namespace.get(name, _MISSING)
        if module is None and not _is(value, (FunctionType, BuiltinFunctionType, type, partial)):
            continue  # data (a dataset, a model) that student code is meant to change
        given = _Given(name, namespace, module, attribute)
        changed += given.check(restore=True)  # an import of what student code had replaced
        _state.protected[name] = given
    _report("protect", nonce, changed, _student_frames(2))


class _Given:
    """A name a locked cell of given code bound: an import is, before each test, the module (or its attribute)
    as the library holds it then (after what student code replaced was put back); a function or class the
    cell defined is that object."""

    def __init__(self, name, namespace, module, attribute):
        self.label = f"the given name {name!r}"
        self.name, self.namespace, self.module, self.attribute = name, namespace, module, attribute
        self.saved = namespace.get(name, _MISSING)

    def expected(self):
        module = _modules.get(self.module) if self.module else None
        if module is None:
            return self.saved
        return module if self.attribute is None else getattr(module, self.attribute, self.saved)

    def check(self, restore, library=False):
        expected = self.expected()
        if expected is _MISSING or _same(self.namespace.get(self.name, _MISSING), expected):
            return []
        if restore:
            self.namespace[self.name] = expected
        return [self.label]


def completed(nonce):
    """The last statement of a test cell: the test ran to its end. Changes nothing; one signed line."""
    _report("completed", nonce, _state.report(restore=False), _student_frames(2))


def _canaries(nonce, checks):
    """Computations whose answers student code cannot have prepared for: they depend on a fresh nonce."""
    failures = []
    x = 1.0 + (sum(map(ord, str(nonce))) % 1000) / 7.0
    if abs(-x) != x or len([0] * int(x)) != int(x) or not isinstance(x, float) or math.isclose(x, x + 1):
        failures.append("builtins")
    try:
        checks.assert_close(x, x + 1.0)
        failures.append("course_lib.asserts.assert_close")
    except AssertionError:
        pass
    numpy = _modules.get("numpy")
    if numpy is not None and (numpy.allclose(x, x + 1.0) or not numpy.allclose(x, x)):
        failures.append("numpy.allclose")
    torch = _modules.get("torch")
    if torch is not None:
        a, b = torch.tensor([x], dtype=torch.float64), torch.tensor([x + 1.0], dtype=torch.float64)
        if torch.allclose(a, b) or not torch.equal(a, a) or bool(a == b) or float(a) != x or a.item() != x:
            failures.append("torch comparisons")
    return failures


def seed(value: int) -> None:
    """The grader seeds random, numpy and torch (those imported) before every cell: repeatable grades."""
    import random

    global _seed
    _seed = value
    random.seed(value)
    for name in _LAZY:
        if name in _modules:
            _seed_module(name)


def _seed_module(name):
    if name == "numpy":
        _modules["numpy"].random.seed(_seed)
    elif name == "torch":
        _modules["torch"].manual_seed(_seed)

