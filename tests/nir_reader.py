"""An independent reader of fwdsnn's NIR graphs, for the tests: it simulates a graph from NIR's
own equations and the graph's metadata alone (numpy, none of fwdsnn's network code), as an
importer would, so that a graph which does not say everything the network computes fails."""

import nir
import numpy as np


def simulate(graph: nir.NIRGraph, x: np.ndarray) -> np.ndarray:
    """Run one exported chain graph (an MLP or one operator sub-network) on (B, in) inputs
    with Norse's Euler scheme at the graph's dt; returns the decoded (B, out) output.

    A reader of the file alone, as an importer would be: the check that the graph and its
    metadata say everything the network computes."""
    meta = graph.metadata
    dt, steps, window = float(meta["dt"]), int(meta["steps"]), int(meta["window"])
    following = dict(graph.edges)
    chain, name = [], following["input"]
    while name != "output":
        chain.append(graph.nodes[name])
        name = following[name]
    state = {id(node): [np.zeros((len(x), node.v_leak.size)), node.v_leak + np.zeros((len(x), 1))]
             for node in chain if isinstance(node, (nir.CubaLIF, nir.CubaLI))}
    voltages = []
    for _ in range(steps):
        h = x
        for node in chain:
            if isinstance(node, nir.Affine):
                h = h @ node.weight.T + node.bias
                continue
            current, v = state[id(node)]
            current += dt / node.tau_syn * (node.w_in * h - current)
            v += dt / node.tau_mem * ((node.v_leak - v) + node.r * current)
            h = v.copy()  # v changes in place next step
            if isinstance(node, nir.CubaLIF):
                h = (v > node.v_threshold).astype(v.dtype)
                v[:] = np.where(h > 0, node.v_reset, v)
        voltages.append(h)
    return np.mean(voltages[-window:], axis=0)
