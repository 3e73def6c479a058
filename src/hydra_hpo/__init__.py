"""hydra-hpo: declarative hyperparameter optimization of Lightning models as a Hydra sweeper.

The algorithm core (``space``, ``searchers``, ``schedulers``, ``tuner``, ``executors.simulator``)
imports no Hydra, so it can be tested and simulated on its own.
"""

__version__ = "0.1.0"
