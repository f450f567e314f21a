"""Workers: executors, the evaluator registry and the evaluators.

Nothing here imports ``search`` or ``archive``: an evaluator gets plain values and
returns plain values (see :mod:`workers.contract`).
"""
