"""The lecture's figure set (`poolbench-figures OUT RUNS…`): one module per idea.

nets.py: where the parameters are and the shape diagram of the lecture's two nets; pooling.py:
max vs average pooling on one of the runs' own images; sweep.py: train vs validation accuracy
and accuracy vs parameters over the runs; review.py: one run's confusion matrix, mistakes and
activations; cli.py: the command. Each figure function returns the figure and the data it drew.
"""
