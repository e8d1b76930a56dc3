"""KrakenLNN: a liquid neural network -- a leaky echo-state reservoir with a ridge readout.

State update, for input ``u(t)`` (length ``input_size``) and state ``x(t)`` (``reservoir_size``):

    x(t) = (1 - a) x(t-1) + a tanh( (W x(t-1) + W_in u(t) + b + noise * xi(t)) / T )

* ``W`` is a sparse random recurrent matrix (``connectivity`` = fraction of non-zero weights,
  normal entries) rescaled so its spectral radius equals ``spectral_radius`` exactly (largest
  eigenvalue modulus computed with LAPACK for small reservoirs, ARPACK otherwise);
* ``W_in`` has uniform entries in ``[-input_scaling, input_scaling]``, ``b`` uniform entries in
  ``[-bias_scaling, bias_scaling]`` (0 by default);
* ``a`` is ``leak_rate`` (1 = no leak, small = slow, smooth "liquid" dynamics);
* ``xi(t)`` is standard normal noise drawn from the network's seeded generator;
* ``T`` is ``temperature``: it divides the pre-activation before ``tanh``. ``T > 1`` keeps the
  units in tanh's near-linear range (softer, more linear dynamics, longer linear memory but
  also an effective spectral radius of ``spectral_radius / T``); ``T < 1`` sharpens the units
  towards saturation (more nonlinear, shorter memory). ``T = 1`` is the classic echo-state net.

The recurrent product ``W x`` dominates a step (about 80% of it at 1000 units), so each network
uses whichever of a dense gemv and a CSR matvec its size and connectivity make cheaper; see
:func:`prefers_sparse` for the cost model and the measurements behind it. The choice is a fixed
function of the parameters, never timed at run time, so equal seeds still give bit-identical
states.

Every processed sequence leaves a trace (its final state) in a temporal memory buffer of
``memory_capacity`` entries; see :class:`TemporalMemory` for the consolidation policy.
"""

from allele.kraken.memory import MemoryTrace, TemporalMemory
from allele.kraken.network import BatchResult, KrakenLNN, ReservoirResult
from allele.kraken.numerics import DENSE_EIG_UP_TO, INLINE_WORK, prefers_sparse
from allele.kraken.quality import memory_capacity_profile, memory_capacity_score

__all__ = [
    "DENSE_EIG_UP_TO",
    "INLINE_WORK",
    "BatchResult",
    "KrakenLNN",
    "MemoryTrace",
    "ReservoirResult",
    "TemporalMemory",
    "memory_capacity_profile",
    "memory_capacity_score",
    "prefers_sparse",
]
