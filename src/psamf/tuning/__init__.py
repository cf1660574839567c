"""Hyper-parameter search for psamf (``psamf tune``), on Optuna (the ``tune`` extra).

``space`` parses the search space, ``study`` opens the shared study and runs a worker's trials
within the budget, ``trial`` is the objective (the one trainer, validation only), ``export``
writes the best trial as a preset plus the study's record and plots. Optuna is imported only when
a study is opened, so ``psamf`` works without the extra.
"""
