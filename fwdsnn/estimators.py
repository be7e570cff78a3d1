"""Where each method's ``estimator`` is implemented, as import paths rather than imports.

Kept free of torch so that the workflow can read it while planning jobs: a training job's code
fingerprint then covers its own estimator's module and not the others, and editing one
estimator reruns only the runs that use it.
"""

from fwdsnn.fingerprint import code_fingerprint

ESTIMATORS = {
    "backprop": ("fwdsnn.grad.bptt", "AdjointBackprop"),
    "backprop-norse": ("fwdsnn.grad.backprop", "Backprop"),
    "forward": ("fwdsnn.grad.forward", "ForwardGradient"),
    "perturbation": ("fwdsnn.grad.perturbation", "WeightPerturbation"),
}


def estimator_module(name: str) -> str:
    """The module implementing estimator ``name``; unknown names list the known ones."""
    try:
        return ESTIMATORS[name][0]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATORS)}") from None


def training_code_fingerprint(name: str) -> str:
    """Fingerprint of the code a training run with estimator ``name`` executes: the workflow's
    rerun trigger and the key that keeps a checkpoint from resuming under other code."""
    return code_fingerprint("fwdsnn.train", estimator_module(name))
