"""The components a suite can measure, each turned into one repeatable operation.

``prepare(component, params, target)`` builds the workload outside the timed region and returns
a ``Prepared``: the operation the timing loop calls, the workload's own units per operation
(generations, sequences, tokens) for throughput, and its quality figures (best fitness, memory
capacity...). The workload modules are imported only here, inside the adapters, so that loading
a suite stays cheap.

Components:

- ``evolution``: one operation is a complete ``EvolutionEngine.run`` of ``generations``
  generations from a fresh population (``TargetPersonality`` fitness, a fixed target); quality
  ``best_fitness``, ``mean_fitness``, ``evaluations``.
- ``kraken``: one operation is ``KrakenLNN.process_sequence`` over a sequence of
  ``sequence_length`` values; quality ``memory_capacity`` (Jaeger's linear memory capacity).
- ``agent``: one operation is one ``NLPAgent.complete`` chat turn; units are turns and
  generated tokens. The synthetic provider's simulated latency is 0 unless ``ttft_s`` /
  ``per_token_s`` are given, so the default measures the agent's own work per turn.
- ``cmr``: one operation is one ``FullCMRModel`` forward pass over a segment of
  ``sequence_length`` tokens with a full memory (capture, retrieval and reweaving; a GPT-style
  backbone of ``layers`` blocks, d_model ``d_model``, capturing the block before the middle and
  reweaving the middle one); quality ``storage_efficiency``, ``cache_hit_rate``,
  ``memory_utilization`` and the share of the pass spent in capture and reweaving.
- ``python``: pure-Python kernels (``kernel`` = sort | sum | json, ``size``), used to check the
  harness itself and the machine's noise.
- ``function``: ``target = "module:factory"``; ``factory(**params)`` returns a ``Prepared`` or a
  zero-argument callable.
"""

from __future__ import annotations

import difflib
import enum
import functools
import importlib
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from allele.errors import AlleleError, BenchmarkError, ConfigurationError, check_int


class BenchmarkType(enum.StrEnum):
    """The kinds of benchmark, one per component a suite can measure (``suite.component``)."""

    EVOLUTION = "evolution"
    KRAKEN_PROCESSING = "kraken"
    AGENT_CHAT = "agent"
    CMR_FORWARD = "cmr"
    PYTHON = "python"
    FUNCTION = "function"


COMPONENTS = tuple(t.value for t in BenchmarkType)


@dataclass(frozen=True)
class ComponentUnderTest:
    """A component a benchmark measures: its kind and, for ``function``, the target factory.

    >>> ComponentUnderTest("evolution").check({"population_size": 1})
    'population_size must be an integer in [2, 10000000], got 1'
    """

    type: BenchmarkType
    target: str | None = None

    def __post_init__(self) -> None:
        if self.type not in COMPONENTS:
            raise ConfigurationError(
                f"unknown component {self.type!r}; known: {', '.join(COMPONENTS)}"
            )
        object.__setattr__(self, "type", BenchmarkType(self.type))

    @property
    def parameters(self) -> dict[str, Any]:
        """The parameters the component takes and their defaults (empty for ``function``)."""
        return dict(PARAMETERS.get(self.type, {}))

    def check(self, params: dict[str, Any]) -> str | None:
        """Why ``params`` would fail (unknown names first), or None (``check_params``)."""
        unknown = unknown_parameters(self.type, params)
        if unknown:
            return "; ".join(problem for _, problem in unknown)
        return check_params(self.type, params)

    def prepare(self, params: dict[str, Any], run_index: int = 0) -> Prepared:
        """The workload ready to measure (``prepare``)."""
        return prepare(self.type, params, self.target, run_index)


@dataclass
class Prepared:
    """A workload ready to measure: ``operation()`` is what one timed call does."""

    operation: Callable[[], object]
    # Units per operation; read after the samples and quality, so a workload whose units are
    # only known once it ran (tokens per chat turn) may fill them in from ``quality``.
    units: dict[str, float] = field(default_factory=dict)
    quality: Callable[[], dict[str, float]] = field(default=lambda: {})
    close: Callable[[], None] = field(default=lambda: None)


def prepare(
    component: str, params: dict[str, Any], target: str | None = None, run_index: int = 0
) -> Prepared:
    """The ``Prepared`` workload of ``component`` for one cell's ``params``.

    ``run_index`` varies the random seed between the processes of one cell (seed = params
    ``seed`` + run_index) so that the quality figures are medians over independent runs.
    """
    if component == "function":
        if target is None:
            raise ConfigurationError("component 'function' needs target = 'module:callable'")
        return _prepare_function(target, params)
    adapter = _ADAPTERS.get(component)
    if adapter is None:
        raise ConfigurationError(f"unknown component {component!r}; known: {', '.join(COMPONENTS)}")
    params = dict(params)
    params["seed"] = int(params.get("seed", 0)) + run_index
    return adapter(params)


def _prepare_function(target: str, params: dict[str, Any]) -> Prepared:
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise BenchmarkError(f"cannot import the module of target {target!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise BenchmarkError(f"target {target!r}: {module_name} has no {attr!r}") from exc
    if not callable(obj):
        raise BenchmarkError(f"target {target!r} is not callable")
    made = obj(**params)
    if isinstance(made, Prepared):
        return made
    if callable(made):
        return Prepared(operation=made)
    raise BenchmarkError(
        f"target {target!r} returned {type(made).__name__}; expected a Prepared or a callable"
    )


#: The parameters of each built-in component and their defaults (``function`` takes whatever
#: its factory takes).
PARAMETERS: dict[str, dict[str, Any]] = {
    "evolution": {"population_size": 100, "mutation_rate": 0.1, "generations": 10, "seed": 0},
    "kraken": {"reservoir_size": 100, "connectivity": 0.1, "sequence_length": 100, "seed": 0},
    "agent": {
        "temperature": 0.7,
        "provider": "synthetic",
        "model": "",
        "max_tokens": 64,
        "ttft_s": 0.0,
        "per_token_s": 0.0,
        "seed": 0,
    },
    "cmr": {
        "layers": 4,
        "d_model": 128,
        "buffer_size": 256,
        "retrieval_strategy": "similarity",
        "sequence_length": 128,
        "seed": 0,
    },
    "python": {"kernel": "sort", "size": 1000, "seed": 0},
}
PYTHON_KERNELS = ("sort", "sum", "json")


def unknown_parameters(component: str, names: Iterable[str]) -> list[tuple[str, str]]:
    """``(name, problem)`` for each of ``names`` that ``component`` does not take, with the
    closest known name as a suggestion ("did you mean ..."); empty for ``function``."""
    allowed = PARAMETERS.get(component)
    if allowed is None:
        return []
    problems = []
    for name in names:
        if name in allowed:
            continue
        close = difflib.get_close_matches(name, list(allowed), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        problems.append(
            (
                name,
                f"component {component!r} has no parameter {name!r}; {hint}"
                f"its parameters: {', '.join(sorted(allowed))}",
            )
        )
    return problems


def check_params(component: str, params: dict[str, Any]) -> str | None:
    """The component's own verdict on one cell's parameters: None, or the reason it would fail.

    Runs the same checks as building the workload (``EvolutionConfig``, ``KrakenLNN``'s
    argument checks, ``AgentConfig``...) without building it, so a suite can be checked cell
    by cell before any worker starts. Names the component does not take are
    ``unknown_parameters``' business and are ignored here.
    """
    checker = _CHECKS.get(component)
    if checker is None:
        return None
    key = (component, tuple(sorted((k, type(v).__name__, v) for k, v in params.items())))
    return _cached_check(key, checker)


@functools.lru_cache(maxsize=65536)
def _cached_check(key: tuple[str, tuple[tuple[str, str, Any], ...]], checker: Any) -> str | None:
    # Keyed with each value's type: True == 1 and 1 == 1.0, but they are different parameters.
    params = {name: value for name, _, value in key[1]}
    allowed = PARAMETERS[key[0]]
    try:
        checker({**allowed, **{k: v for k, v in params.items() if k in allowed}})
    except (AlleleError, ValueError, TypeError) as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def _take(params: dict[str, Any], allowed: dict[str, Any], component: str) -> dict[str, Any]:
    """``allowed`` (name -> default) filled from ``params``; unknown names are an error."""
    unknown = unknown_parameters(component, params)
    if unknown:
        raise ConfigurationError("; ".join(problem for _, problem in unknown))
    return {**allowed, **params}


def _check_python(p: dict[str, Any]) -> None:
    check_int("size", p["size"], 1, 100_000_000)
    check_int("seed", p["seed"], 0, 2**63 - 1)
    if p["kernel"] not in PYTHON_KERNELS:
        raise ConfigurationError(
            f"python kernel {p['kernel']!r} is unknown; allowed: {', '.join(PYTHON_KERNELS)}"
        )


def _evolution_config(p: dict[str, Any]) -> Any:
    from allele.evolution import EvolutionConfig

    return EvolutionConfig(
        population_size=p["population_size"],
        mutation_rate=p["mutation_rate"],
        generations=p["generations"],
        seed=p["seed"],
    )


def _kraken_arguments(p: dict[str, Any]) -> dict[str, Any]:
    check_int("sequence_length", p["sequence_length"], 1, 10_000_000)
    return {
        "reservoir_size": p["reservoir_size"],
        "connectivity": p["connectivity"],
        "seed": p["seed"],
    }


def _check_kraken(p: dict[str, Any]) -> None:
    from allele.kraken import KrakenLNN

    class _ArgumentsOnly(KrakenLNN):
        # KrakenLNN checks every argument before it draws its weights; skip the drawing.
        def _build_weights(self) -> None:
            pass

    _ArgumentsOnly(**_kraken_arguments(p))


def _agent_config(p: dict[str, Any]) -> Any:
    from allele.agent import AgentConfig
    from allele.agent.config import SyntheticConfig

    return AgentConfig(
        provider=p["provider"],
        model=p["model"],
        temperature=p["temperature"],
        max_tokens=p["max_tokens"],
        synthetic=SyntheticConfig(seed=p["seed"], ttft_s=p["ttft_s"], per_token_s=p["per_token_s"]),
    )


def _prepare_python(params: dict[str, Any]) -> Prepared:
    p = _take(params, PARAMETERS["python"], "python")
    _check_python(p)
    size = int(p["size"])
    rng = random.Random(p["seed"])
    data = [rng.random() for _ in range(size)]
    kernel = p["kernel"]
    operation: Callable[[], object]
    if kernel == "sort":
        operation = lambda: sorted(data)  # noqa: E731
    elif kernel == "sum":
        operation = lambda: sum(x * x for x in data)  # noqa: E731
    else:  # json, the last of PYTHON_KERNELS
        document = {f"k{i}": x for i, x in enumerate(data)}
        operation = lambda: json.loads(json.dumps(document))  # noqa: E731
    return Prepared(operation=operation, units={"items": float(size)})


def _prepare_evolution(params: dict[str, Any]) -> Prepared:
    import numpy as np

    from allele.evolution import EvolutionEngine
    from allele.fitness import TargetPersonality
    from allele.genome import TRAIT_NAMES

    p = _take(params, PARAMETERS["evolution"], "evolution")
    config = _evolution_config(p)
    generations = config.generations
    engine = EvolutionEngine(config)
    # A fixed target personality away from the centre of the trait cube, the same in every cell.
    fitness = TargetPersonality(dict(zip(TRAIT_NAMES, np.linspace(0.15, 0.85, 8), strict=True)))
    last: dict[str, float] = {}

    def operation() -> None:
        result = engine.run(fitness)
        last["best_fitness"] = result.best_fitness
        last["mean_fitness"] = float(result.history[-1].mean_fitness)
        last["evaluations"] = float(result.evaluations)

    return Prepared(
        operation=operation, units={"generations": float(generations)}, quality=lambda: last
    )


def _prepare_kraken(params: dict[str, Any]) -> Prepared:
    import numpy as np

    from allele.kraken import KrakenLNN, memory_capacity_score

    p = _take(params, PARAMETERS["kraken"], "kraken")
    lnn = KrakenLNN(**_kraken_arguments(p))
    rng = np.random.default_rng(int(p["seed"]))
    sequence = rng.uniform(-1.0, 1.0, size=int(p["sequence_length"]))

    def quality() -> dict[str, float]:
        return {"memory_capacity": memory_capacity_score(lnn, seed=int(p["seed"]))}

    return Prepared(
        operation=lambda: lnn.process_sequence(sequence),
        units={"sequences": 1.0, "steps": float(len(sequence))},
        quality=quality,
    )


def _prepare_agent(params: dict[str, Any]) -> Prepared:
    import asyncio

    from allele.agent import NLPAgent
    from allele.genome import ConversationalGenome

    p = _take(params, PARAMETERS["agent"], "agent")
    # The synthetic provider's simulated latency defaults to zero here: the suite then measures
    # the agent's own work per turn (prompt, history, streaming, accounting), not sleeps.
    config = _agent_config(p)
    agent = NLPAgent(ConversationalGenome(), config)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(agent.initialize())
    turns = [0]
    units = {"turns": 1.0, "tokens": 0.0}

    def operation() -> None:
        turns[0] += 1
        loop.run_until_complete(agent.complete(f"Benchmark message number {turns[0]}."))

    def quality() -> dict[str, float]:
        metrics = agent.get_metrics()
        requests = max(1, int(metrics["requests"]))
        # Tokens per turn are only known once turns ran; the worker reads units after sampling.
        units["tokens"] = float(metrics["tokens_out"]) / requests
        return {
            "tokens_out_per_turn": units["tokens"],
            "tokens_in_per_turn": float(metrics["tokens_in"]) / requests,
            "error_rate": float(metrics["errors"]) / requests,
        }

    def close() -> None:
        loop.run_until_complete(agent.close())
        loop.close()

    return Prepared(operation=operation, units=units, quality=quality, close=close)


def _cmr_configs(p: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The backbone and memory settings of one cell, checked by ``allele.cmr.config`` (no
    torch): the check at suite load and the workload build the same thing."""
    from allele.cmr.config import CMRConfig, GPTConfig

    layers = int(p["layers"])
    if layers < 2:
        raise ConfigurationError(f"cmr layers={layers} must be at least 2 (capture, reweave)")
    length = int(p["sequence_length"])
    d_model = int(p["d_model"])
    backbone = GPTConfig(
        vocab_size=512,
        n_positions=max(length, 16),
        d_model=d_model,
        n_layers=layers,
        n_heads=max(1, d_model // 32),
    )
    memory = {
        "target_layers": [layers // 2 - 1],
        "intervention_layers": [layers // 2],
        "buffer_size": int(p["buffer_size"]),
        "retrieval_strategy": str(p["retrieval_strategy"]),
    }
    CMRConfig.from_mapping(memory)
    return backbone, memory


_CHECKS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "evolution": _evolution_config,
    "kraken": _check_kraken,
    "agent": _agent_config,
    "cmr": _cmr_configs,
    "python": _check_python,
}


def _prepare_cmr(params: dict[str, Any]) -> Prepared:
    from allele.errors import require

    torch: Any = require("torch", "torch")
    from allele.cmr import FullCMRModel

    p = _take(params, PARAMETERS["cmr"], "cmr")
    backbone, memory = _cmr_configs(p)
    torch.set_num_threads(1)  # one core per worker: timings comparable across cells
    torch.manual_seed(int(p["seed"]))
    length = int(p["sequence_length"])
    model = FullCMRModel(backbone, memory).eval()
    generator = torch.Generator().manual_seed(int(p["seed"]))
    segment = torch.randint(0, 512, (1, length), generator=generator)

    @torch.no_grad()
    def operation() -> None:
        model(segment)

    operation()  # the memory is full from a previous segment before the first timing

    def quality() -> dict[str, float]:
        stats = model.performance_stats
        hook = (stats["avg_capture_time"] or 0.0) + (stats["avg_reconstruction_time"] or 0.0)
        forward = stats["avg_forward_time"] or 0.0
        return {
            "storage_efficiency": float(stats["storage_efficiency"] or 0.0),
            "cache_hit_rate": float(stats["cache_hit_rate"] or 0.0),
            "memory_utilization": float(stats["memory_utilization"] or 0.0),
            "cmr_time_share": hook / forward if forward else 0.0,
        }

    return Prepared(
        operation=operation,
        units={"segments": 1.0, "tokens": float(length)},
        quality=quality,
    )


_ADAPTERS: dict[str, Callable[[dict[str, Any]], Prepared]] = {
    "evolution": _prepare_evolution,
    "kraken": _prepare_kraken,
    "agent": _prepare_agent,
    "cmr": _prepare_cmr,
    "python": _prepare_python,
}
