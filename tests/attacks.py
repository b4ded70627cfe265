"""The attack corpus: cells a student adds to turn failing tests into passing ones.

Each attack is graded on a lab whose answers are left unanswered (every test would fail honestly):
it must earn 0 points, and where it changes the kernel, that change is reported as tampering.
Sources: nbgrader's own cheat notebooks (nbgrader/tests/apps/files/submitted-cheat-attempt*.ipynb),
IPython's hooks (interactiveshell, events, inputtransformer2, custom exceptions, compiler),
ipykernel's message handling (shell handlers, do_execute, Session.send), the interpreter's hooks
(sys.settrace, sys.excepthook, builtins, the import system), and attacks on the checks and on the
grader's own guard.
"""

_CLEAR_RESULT = "def _clear(result):\n    result.error_in_exec = None\n    result.error_before_exec = None\n"
_NO_TRACEBACK = "import IPython.core.interactiveshell as _ish\n_ish.InteractiveShell.showtraceback = lambda *a, **k: None\n"
_SKIP_TESTS = ("def _skip(lines):\n"
               "    return ['pass\\n'] if any('assert' in l for l in lines) else lines\n")

# name -> (code, whether the grader must report a change to the kernel)
ATTACKS = {
    # nbgrader's published cheats
    "nbgrader_cheat": ("import IPython.core.interactiveshell\n"
                       "IPython.core.interactiveshell.InteractiveShell.showtraceback = lambda *args, **kwargs : None", True),
    "nbgrader_cheat_alternative": ("import IPython.core.interactiveshell\n"
                                   "IPython.core.interactiveshell.InteractiveShell.showtraceback = None", True),
    # IPython's exception reporting
    "showtraceback_instance": ("get_ipython().showtraceback = lambda *a, **k: None", True),
    "_showtraceback": ("get_ipython()._showtraceback = lambda *a, **k: None", True),
    "showtraceback_subclass": ("import ipykernel.zmqshell\n"
                               "ipykernel.zmqshell.ZMQInteractiveShell.showtraceback = lambda *a, **k: None", True),
    "showtraceback_code_swap": ("import IPython.core.interactiveshell as ish\n"
                                "ish.InteractiveShell.showtraceback.__code__ = (lambda self, *a, **k: None).__code__", True),
    "set_custom_exc": ("get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)", True),
    "set_custom_exc_assertion": ("get_ipython().set_custom_exc((AssertionError, NotImplementedError), lambda *a, **k: None)\n"
                                 + _NO_TRACEBACK, True),
    "sys_excepthook": ("import sys\nsys.excepthook = lambda *a: None\n" + _NO_TRACEBACK, True),
    "mock_patch": ("from unittest import mock\nimport IPython.core.interactiveshell as ish\n"
                   "mock.patch.object(ish.InteractiveShell, 'showtraceback', lambda *a, **k: None).start()", True),
    # events: the execution result is handed to post_run_cell callbacks, which can clear the error
    "post_run_cell_clears_error": (_CLEAR_RESULT + "get_ipython().events.register('post_run_cell', _clear)", True),
    "post_run_cell_and_no_traceback": (_CLEAR_RESULT + _NO_TRACEBACK + "get_ipython().events.register('post_run_cell', _clear)", True),
    "pre_run_cell_repatches": ("def _again(info):\n"
                               "    import IPython.core.interactiveshell as ish\n"
                               "    ish.InteractiveShell.showtraceback = lambda *a, **k: None\n"
                               + _CLEAR_RESULT +
                               "get_ipython().events.register('pre_run_cell', _again)\n"
                               "get_ipython().events.register('post_run_cell', _clear)", True),
    "post_execute_callback": (_CLEAR_RESULT + "get_ipython().events.register('post_execute', lambda: None)\n"
                              "get_ipython().events.register('post_run_cell', _clear)", True),
    # input and AST transformers rewrite the test before it runs
    "input_transformer_cleanup": (_SKIP_TESTS + "get_ipython().input_transformers_cleanup.append(_skip)", True),
    "input_transformer_post": (_SKIP_TESTS + "get_ipython().input_transformers_post.append(_skip)", True),
    "line_transform": (_SKIP_TESTS + "get_ipython().input_transformer_manager.line_transforms.append(_skip)", True),
    "ast_transformer": ("import ast\n"
                        "class _NoAsserts(ast.NodeTransformer):\n"
                        "    def visit_Assert(self, node):\n"
                        "        return ast.Pass()\n"
                        "    def visit_Expr(self, node):\n"
                        "        return ast.Pass()\n"
                        "get_ipython().ast_transformers.append(_NoAsserts())", True),
    "transform_cell": ("_real = get_ipython().transform_cell\n"
                       "get_ipython().transform_cell = lambda cell: 'pass\\n' if 'assert' in cell else _real(cell)", True),
    "custom_compiler": ("_shell = get_ipython()\n_real_compile = _shell.compile\n"
                        "class _Compiler(type(_real_compile)):\n"
                        "    def ast_parse(self, source, *a, **k):\n"
                        "        return super().ast_parse('pass' if 'assert' in source else source, *a, **k)\n"
                        "_new = _Compiler()\n_new.__dict__.update(_real_compile.__dict__)\n_shell.compile = _new", True),
    # the execution path itself
    "run_cell_async_instance": ("_shell = get_ipython()\n_real = _shell.run_cell_async\n"
                                "async def _fake(raw_cell, *a, **k):\n"
                                "    return await _real('pass' if 'assert' in raw_cell else raw_cell, *a, **k)\n"
                                "_shell.run_cell_async = _fake", True),
    "run_cell_async_class": ("import IPython.core.interactiveshell as ish\n_real = ish.InteractiveShell.run_cell_async\n"
                             "async def _fake(self, raw_cell, *a, **k):\n"
                             "    return await _real(self, 'pass' if 'assert' in raw_cell else raw_cell, *a, **k)\n"
                             "ish.InteractiveShell.run_cell_async = _fake", True),
    "execution_result_success": ("import IPython.core.interactiveshell as ish\n"
                                 "ish.ExecutionResult.success = property(lambda self: True)\n" + _NO_TRACEBACK, True),
    "do_execute": ("_kernel = get_ipython().kernel\n_real = _kernel.do_execute\n"
                   "async def _fake(code, *a, **k):\n"
                   "    return await _real('pass' if 'assert' in code else code, *a, **k)\n"
                   "_kernel.do_execute = _fake", True),
    "shell_handler": ("_kernel = get_ipython().kernel\n_real = _kernel.shell_handlers['execute_request']\n"
                      "async def _fake(stream, ident, parent):\n"
                      "    if 'assert' in parent['content']['code']:\n"
                      "        parent['content']['code'] = 'pass'\n"
                      "    return await _real(stream, ident, parent)\n"
                      "_kernel.shell_handlers['execute_request'] = _fake", True),
    "session_send_rewrites_replies": ("_session = get_ipython().kernel.session\n_real = _session.send\n"
                                      "def _send(stream, msg_or_type, content=None, *a, **k):\n"
                                      "    if msg_or_type == 'error':\n"
                                      "        return None\n"
                                      "    if msg_or_type == 'execute_reply' and content is not None:\n"
                                      "        content = dict(content, status='ok')\n"
                                      "    return _real(stream, msg_or_type, content, *a, **k)\n"
                                      "_session.send = _send", True),
    "session_send_class": ("import jupyter_client.session as js\n_real = js.Session.send\n"
                           "def _send(self, stream, msg_or_type, content=None, *a, **k):\n"
                           "    if msg_or_type == 'error':\n"
                           "        return None\n"
                           "    if msg_or_type == 'execute_reply' and content is not None:\n"
                           "        content = dict(content, status='ok')\n"
                           "    return _real(self, stream, msg_or_type, content, *a, **k)\n"
                           "js.Session.send = _send", True),
    # the interpreter's hooks
    "settrace_skips_asserts": ("import sys, linecache\n"
                               "def _local(frame, event, arg):\n"
                               "    if event == 'line' and 'assert' in linecache.getline(frame.f_code.co_filename, frame.f_lineno):\n"
                               "        try:\n"
                               "            frame.f_lineno = frame.f_lineno + 1\n"
                               "        except Exception:\n"
                               "            pass\n"
                               "    return _local\n"
                               "def _tracer(frame, event, arg):\n"
                               "    return _local if frame.f_code.co_name == '<module>' else None\n"
                               "sys.settrace(_tracer)", True),
    "builtins_import_fakes_checks": ("import builtins, types\n_real = builtins.__import__\n"
                                     "_fake = types.ModuleType('course_lib.asserts')\n"
                                     "_fake.assert_close = lambda *a, **k: None\n"
                                     "def _imp(name, *a, **k):\n"
                                     "    return _fake if name == 'course_lib.asserts' else _real(name, *a, **k)\n"
                                     "builtins.__import__ = _imp", True),
    "sys_modules_fake_checks": ("import sys, types\n_fake = types.ModuleType('course_lib.asserts')\n"
                                "_fake.assert_close = lambda *a, **k: None\n"
                                "sys.modules['course_lib.asserts'] = _fake", True),
    "meta_path_fake_checks": ("import sys, types, importlib.abc, importlib.util\n"
                              "class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):\n"
                              "    def find_spec(self, name, path, target=None):\n"
                              "        return importlib.util.spec_from_loader(name, self) if name == 'course_lib.asserts' else None\n"
                              "    def create_module(self, spec):\n"
                              "        return None\n"
                              "    def exec_module(self, module):\n"
                              "        module.assert_close = lambda *a, **k: None\n"
                              "sys.meta_path.insert(0, _Finder())\n"
                              "sys.modules.pop('course_lib.asserts', None)", True),
    "builtins_abs": ("import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.all = lambda x: True", True),
    "stdout_swallowed": ("import sys, io\nsys.stdout = io.StringIO()\n" + _NO_TRACEBACK, True),
    # the checks the tests call
    "rebind_given_name": ("assert_close = lambda *a, **k: None\nnp = type('np', (), {'allclose': staticmethod(lambda *a, **k: True)})", True),
    "patch_checks_module": ("import course_lib.asserts\ncourse_lib.asserts.assert_close = lambda *a, **k: None", True),
    "checks_code_swap": ("import course_lib.asserts\n"
                         "course_lib.asserts.assert_close.__code__ = (lambda actual, expected, *, atol=0, rtol=0, name='': None).__code__", True),
    "checks_kwdefaults": ("import course_lib.asserts\n"
                          "course_lib.asserts.assert_close.__kwdefaults__ = {'atol': 1e300, 'rtol': 1e300, 'name': 'value'}\n"
                          "class _Anything(float):\n    pass", True),
    "numpy_allclose": ("import numpy\nnumpy.allclose = lambda *a, **k: True", True),
    # the grader's own guard and its reports
    "guard_replaced": ("import course_lib.guard as g\n"
                       "g.restore_and_verify = lambda nonce: print('__COURSE_GUARD__state\\x1f' + nonce + '\\x1f\\x1f\\x1f\\x19' + '0' * 64)\n"
                       "g.completed = lambda nonce: print('__COURSE_GUARD__completed\\x1f' + nonce + '\\x1f\\x1f\\x19' + '0' * 64)\n"
                       + _CLEAR_RESULT + _NO_TRACEBACK + "get_ipython().events.register('post_run_cell', _clear)", True),
    "guard_internals": ("import course_lib.guard as g\n"
                        "g._Snapshot.check = lambda self, restore=True: []\n"
                        "g._report = lambda *a, **k: None\n"
                        + _SKIP_TESTS + "get_ipython().input_transformers_cleanup.append(_skip)", True),
    "forged_credit": ("from IPython.display import display\n"
                      "display({'application/vnd.course.credit+json': {'nonce': None, 'checks': [{'points': 99, 'passed': True, 'message': ''}]}}, raw=True)\n"
                      + _CLEAR_RESULT + "get_ipython().events.register('post_run_cell', _clear)", True),
    # code that runs during the test itself (the answer is called by the test) and hides afterwards
    "patch_during_test": ("def double(x):\n"
                          "    import IPython.core.interactiveshell as ish\n"
                          "    ish.InteractiveShell.showtraceback = lambda *a, **k: None\n"
                          "    def clear(result):\n"
                          "        result.error_in_exec = None\n"
                          "    get_ipython().events.register('post_run_cell', clear)\n"
                          "    return x + 1\n", True),
    "self_hiding_during_test": ("def double(x):\n"
                                "    import IPython.core.interactiveshell as ish\n"
                                "    shell = get_ipython()\n"
                                "    real = ish.InteractiveShell.showtraceback\n"
                                "    ish.InteractiveShell.showtraceback = lambda *a, **k: None\n"
                                "    def clear(result):\n"
                                "        result.error_in_exec = None\n"
                                "        ish.InteractiveShell.showtraceback = real\n"
                                "        shell.events.unregister('post_run_cell', clear)\n"
                                "    shell.events.register('post_run_cell', clear)\n"
                                "    return x + 1\n", False),
    "thread_repatches": ("import threading, time\n" + _SKIP_TESTS +
                         "def _loop():\n"
                         "    shell = get_ipython()\n"
                         "    for _ in range(20000):\n"
                         "        if _skip not in shell.input_transformers_cleanup:\n"
                         "            shell.input_transformers_cleanup.append(_skip)\n"
                         "        time.sleep(0.0005)\n"
                         "threading.Thread(target=_loop, daemon=True).start()", False),
    "gc_callback_repatches": (_SKIP_TESTS + "import gc\n"
                              "def _again(phase, info):\n"
                              "    shell = get_ipython()\n"
                              "    if _skip not in shell.input_transformers_cleanup:\n"
                              "        shell.input_transformers_cleanup.append(_skip)\n"
                              "gc.callbacks.append(_again)\n"
                              "get_ipython().input_transformers_cleanup.append(_skip)", True),
    "exec_in_fresh_globals": ("exec('def _clear(result):\\n    result.error_in_exec = None', _g := {})\n"
                              + _NO_TRACEBACK + "get_ipython().events.register('post_run_cell', _g['_clear'])", True),
    "module_written_to_disk": ("open('helper_module.py', 'w').write('def clear(result):\\n    result.error_in_exec = None\\n')\n"
                               "import helper_module\n" + _NO_TRACEBACK +
                               "get_ipython().events.register('post_run_cell', helper_module.clear)", True),
    # the answers: course_lib.reference holds every lab's reference solution, and the grading kernel has it (the
    # hidden tests use it); the cell after test_perceptron, which imported it, takes the place of two_layer's answer
    "answers_import": ("# answer: two_layer\nfrom course_lib.reference.micrograd import two_layer", False),
    "answers_importlib": ("# answer: two_layer\nimport importlib\n"
                          "two_layer = importlib.import_module('course_lib.reference.micrograd').two_layer", False),
    "answers_sys_modules": ("# answer: two_layer\nimport sys\n"
                            "two_layer = sys.modules['course_lib.reference.micrograd'].two_layer", False),
    "answers_sys_modules_at_call": ("# answer: two_layer\ndef two_layer(*args):\n    import sys\n"
                                    "    return sys.modules['course_lib.reference.micrograd'].two_layer(*args)", False),
    "answers_package_attribute": ("# answer: two_layer\nimport course_lib.reference\n"
                                  "two_layer = course_lib.reference.micrograd.two_layer", False),
    "answers_the_tests_name": ("# answer: two_layer\ntwo_layer = _reference.two_layer", False),
    "answers_read_from_file": ("# answer: two_layer\nimport os, course_lib\n"
                               "exec(open(os.path.join(os.path.dirname(course_lib.__file__), 'reference', 'micrograd.py')).read())", False),
    "answers_before_any_test": ("import importlib\n_answers = importlib.import_module('course_lib.reference.micrograd')\n"
                                "perceptron, two_layer = _answers.perceptron, _answers.two_layer", False),
    # test_perceptron puts the reference two_layer in the notebook's place and restores it at its end, which the
    # unanswered perceptron's error skips: with two_layer left undefined, test_two_layer would grade the reference
    # unless the swap ends with its cell
    "answers_swap_left_behind": ("# answer: two_layer\n# not defined here: the reference that test_perceptron swapped in stays", False),
}


def attack_lab_notebook(lab="00_attack"):
    """A lab whose test cells use what a locked cell imported (np, assert_close) and what they import themselves."""
    from nbformat.v4 import new_notebook

    from sample_lab import nbgrader_cell

    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["course"] = {"lab": lab, "title": "Attacked"}
    nb.cells = [
        nbgrader_cell("import numpy as np\nfrom course_lib.asserts import assert_close", "imports"),
        nbgrader_cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION", "double", solution=True),
        nbgrader_cell("assert double(1) == 2, 'double(1) should be 2'\n### BEGIN HIDDEN TESTS\n"
                      "assert np.allclose(double(-3), -6), 'double(-3) should be -6'\n### END HIDDEN TESTS",
                      "test_double", points=2),
        nbgrader_cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION", "square", solution=True),
        nbgrader_cell("assert_close(square(3), 9, name='square(3)')\n### BEGIN HIDDEN TESTS\n"
                      "assert_close(square(-4), 16, name='square(-4)')\n### END HIDDEN TESTS", "test_square", points=3),
        nbgrader_cell("from course_lib.asserts import assert_close as check\n"
                      "check(square(2) + double(2), 8, name='square(2) + double(2)')", "test_both", points=1),
        # as lab 1's hidden tests do: the reference's answers, imported by the test cell
        nbgrader_cell("def perceptron(w, b, x):\n    ### BEGIN SOLUTION\n"
                      "    return 1 if sum(wi * xi for wi, xi in zip(w, x)) + b > 0 else 0\n    ### END SOLUTION",
                      "perceptron", solution=True),
        # (and a swap, as lab 4's do, here of a later answer: what an error leaves behind would earn test_two_layer)
        nbgrader_cell("### BEGIN HIDDEN TESTS\nfrom course_lib.reference import micrograd as _reference\n"
                      "_swapped = _reference.swap(globals(), two_layer=_reference.two_layer)\n### END HIDDEN TESTS\n"
                      "assert perceptron([1, 1], -1.5, [1, 1]) == 1, 'AND(1, 1) should be 1'\n### BEGIN HIDDEN TESTS\n"
                      "assert all(perceptron([1, -2], 0.5, [a, b]) == _reference.perceptron([1, -2], 0.5, [a, b])\n"
                      "           for a in (0, 1) for b in (0, 1)), 'perceptron([1, -2], 0.5, x)'\n"
                      "_swapped.restore()\n### END HIDDEN TESTS",
                      "test_perceptron", points=2),
        nbgrader_cell("def two_layer(x, W1, b1, w2, b2):\n    ### BEGIN SOLUTION\n"
                      "    return perceptron(w2, b2, [perceptron(w, b, x) for w, b in zip(W1, b1)])\n    ### END SOLUTION",
                      "two_layer", solution=True),
        nbgrader_cell("_xor = ([[1, 1], [-1, -1]], [-0.5, 1.5], [1, 1], -1.5)\n"
                      "assert [two_layer([a, b], *_xor) for a in (0, 1) for b in (0, 1)] == [0, 1, 1, 0], 'two_layer: XOR'",
                      "test_two_layer", points=1),
    ]
    return nb


def nbgrader_cheats():
    """The cheat cells of nbgrader's own test notebooks (in the installed wheel), by file name."""
    from pathlib import Path

    import nbformat
    import nbgrader

    files = sorted((Path(nbgrader.__file__).parent / "tests" / "apps" / "files").glob("submitted-cheat-attempt*.ipynb"))
    cheats = {}
    for path in files:
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "set_a")
        cheats[path.stem] = cell.source.replace("# YOUR CODE HERE", "").strip()
    return cheats
