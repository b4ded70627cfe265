"""The reference pieces of the labs' exercises that course_lib's models and loops are built and tested with.

Each module names the lab whose answers it holds (`ANSWERS_OF = "04_gpt"`). The instructor's install, and
the kernels that grade, have them all; `course bundle` gives a module to students only once that lab's
resubmission window has closed. Until then the lab passes its own pieces in (`GPT(config, block=Block)`,
`train_lm(..., get_batch=get_batch)`).
"""
