"""Grading, one stage per file, in the order a submission goes through them:

    plan.py        which versions of which notebooks of which students to grade for a lab (one job each)
    submission.py  one job: read and match (../matching.py) -> restore -> execute -> score, returning a record
    restore.py     put the instructor's test and locked cells back
    sandbox.py     the bubblewrap prefix the kernel runs in (root or unprivileged mode)
    kernel_pool.py kernels started ahead of the submissions that will use them (with the assignment's files)
    execute.py     run the cells one by one, surviving timeouts and crashes
    integrity.py   the grader's side of course_lib.guard: hooks around cells, signed reports
    score.py       points per test cell
    run_lab.py     run the jobs (threads, processes or Dask), keep the best version, save
"""
