"""ConversationalGenome: eight personality traits in [0, 1], with fitness and lineage.

The trait order of ``TRAIT_NAMES`` is fixed, so a population converts to and from an ``N x 8``
numpy array (``population_to_array`` / ``population_from_array``); the evolution engine works on
that array and only builds genome objects at its edges.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from allele.errors import ValidationError, check_real

TRAIT_NAMES: tuple[str, ...] = (
    "empathy",
    "engagement",
    "technical_knowledge",
    "creativity",
    "conciseness",
    "context_awareness",
    "adaptability",
    "personability",
)
N_TRAITS = len(TRAIT_NAMES)
TRAIT_INDEX: dict[str, int] = {name: i for i, name in enumerate(TRAIT_NAMES)}
DEFAULT_TRAIT_VALUE = 0.5
_DICT_KEYS = frozenset({"genome_id", "traits", "fitness", "generation", "parent_ids"})
# Copied for a genome with default traits: a copy is cheaper than np.full.
_DEFAULT_VALUES = np.full(N_TRAITS, DEFAULT_TRAIT_VALUE)


def new_genome_id() -> str:
    """A fresh random genome id: 32 hex digits (128 random bits, as a uuid4 without its tags).

    ``os.urandom`` directly: ``uuid.uuid4().hex`` costs several times more, most of a genome's
    construction time.
    """
    return os.urandom(16).hex()


def trait_index(name: object) -> int:
    """The column of trait ``name`` in ``TRAIT_NAMES`` order; unknown names raise."""
    index = TRAIT_INDEX.get(name) if isinstance(name, str) else None
    if index is None:
        raise ValidationError(f"unknown trait {name!r}; allowed traits: {', '.join(TRAIT_NAMES)}")
    return index


def validate_trait(name: object, value: object) -> float:
    """Return ``value`` as a float after checking ``name`` is a trait and ``value`` is in [0, 1]."""
    trait_index(name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValidationError(
            f"trait {name!r} must be a real number in [0, 1], got {type(value).__name__} {value!r}"
        )
    number = float(value)
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise ValidationError(f"trait {name!r} must be in [0, 1], got {value!r}")
    return number


def _validate_fitness(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValidationError(f"fitness must be a finite number or None, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(f"fitness must be a finite number or None, got {value!r}")
    return number


def _validate_generation(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise ValidationError(f"generation must be an integer >= 0, got {value!r}")
    return int(value)


def _resolve_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValidationError(f"rng must be a numpy Generator, an integer seed or None, got {rng!r}")


class ConversationalGenome:
    """A conversational agent's personality: eight traits in [0, 1], fitness and lineage.

    >>> g = ConversationalGenome(traits={"empathy": 0.9})
    >>> g.traits["empathy"], g.traits["creativity"]
    (0.9, 0.5)
    """

    __slots__ = ("_fitness", "_values", "generation", "genome_id", "parent_ids")

    def __init__(
        self,
        genome_id: str | None = None,
        traits: Mapping[str, float] | None = None,
        *,
        fitness: float | None = None,
        generation: int = 0,
        parent_ids: Sequence[str] = (),
    ) -> None:
        if genome_id is not None and (not isinstance(genome_id, str) or not genome_id):
            raise ValidationError(f"genome_id must be a non-empty string, got {genome_id!r}")
        self.genome_id: str = genome_id or new_genome_id()
        values = _DEFAULT_VALUES.copy()
        if traits is not None:
            if not isinstance(traits, Mapping):
                raise ValidationError(f"traits must be a mapping of name to value, got {traits!r}")
            for name, value in traits.items():
                values[trait_index(name)] = validate_trait(name, value)
        self._values = values
        self._fitness: float | None = None if fitness is None else _validate_fitness(fitness)
        # The common defaults skip the generic checks (a genome is built per individual).
        self.generation: int = (
            generation
            if type(generation) is int and generation >= 0
            else _validate_generation(generation)
        )
        if type(parent_ids) is tuple and not parent_ids:
            self.parent_ids: tuple[str, ...] = ()
            return
        if not isinstance(parent_ids, Sequence) or isinstance(parent_ids, str | bytes):
            raise ValidationError(f"parent_ids must be a sequence of strings, got {parent_ids!r}")
        if not all(isinstance(p, str) for p in parent_ids):
            raise ValidationError(f"parent_ids must be a sequence of strings, got {parent_ids!r}")
        self.parent_ids = tuple(parent_ids)

    @classmethod
    def _trusted(
        cls,
        values: np.ndarray,
        genome_id: str,
        fitness: float | None = None,
        generation: int = 0,
        parent_ids: tuple[str, ...] = (),
    ) -> ConversationalGenome:
        """A genome from fields the caller has already checked (a row of a validated array).

        ``values`` is held, not copied: the caller hands over a row no one else holds. This is
        the path of whole populations (``population_from_array``, the evolution engine), which
        validate their array once instead of every genome's traits.
        """
        genome = object.__new__(cls)
        genome._values = values
        genome.genome_id = genome_id
        genome._fitness = fitness
        genome.generation = generation
        genome.parent_ids = parent_ids
        return genome

    # -- traits ---------------------------------------------------------------------------------
    @property
    def traits(self) -> dict[str, float]:
        """A copy of the traits as ``{name: value}`` in ``TRAIT_NAMES`` order."""
        return dict(zip(TRAIT_NAMES, self._values.tolist(), strict=True))

    @property
    def values(self) -> np.ndarray:
        """A copy of the traits as a length-8 array in ``TRAIT_NAMES`` order."""
        return self._values.copy()

    def get_trait_value(self, name: str) -> float:
        """The value of trait ``name``."""
        return float(self._values[trait_index(name)])

    def set_trait_value(self, name: str, value: float) -> None:
        """Set trait ``name`` to ``value`` (validated); clears the recorded fitness."""
        number = validate_trait(name, value)
        self._values[trait_index(name)] = number
        self._fitness = None

    @property
    def fitness(self) -> float | None:
        """The recorded fitness, or None when not evaluated since the traits last changed."""
        return self._fitness

    @fitness.setter
    def fitness(self, value: float | None) -> None:
        self._fitness = _validate_fitness(value)

    # -- genetic operators ----------------------------------------------------------------------
    def mutate(
        self,
        rate: float = 0.1,
        strength: float = 0.1,
        rng: np.random.Generator | int | None = None,
    ) -> ConversationalGenome:
        """A mutated child: each trait, with probability ``rate``, gets Gaussian noise of sd
        ``strength``, clipped to [0, 1]. The parent is left unchanged."""
        check_real("rate", rate, 0.0, 1.0)
        check_real("strength", strength, 0.0, math.inf, low_open=True, high_open=True)
        gen = _resolve_rng(rng)
        mask = gen.random(N_TRAITS) < rate
        child = self._values + mask * gen.normal(0.0, strength, N_TRAITS)
        return self._child(np.clip(child, 0.0, 1.0), (self.genome_id,))

    def crossover(
        self,
        other: ConversationalGenome,
        rng: np.random.Generator | int | None = None,
        alpha: float = 0.5,
    ) -> ConversationalGenome:
        """A child by blend crossover (BLX-alpha): each trait is drawn uniformly from the
        parents' interval widened by ``alpha`` times its length on both sides, clipped to
        [0, 1]. Neither parent changes."""
        if not isinstance(other, ConversationalGenome):
            raise ValidationError(
                f"crossover needs another ConversationalGenome, got {type(other).__name__}"
            )
        check_real("alpha", alpha, 0.0, math.inf, high_open=True)
        gen = _resolve_rng(rng)
        u = gen.uniform(-alpha, 1.0 + alpha, N_TRAITS)
        child = self._values + u * (other._values - self._values)
        generation = max(self.generation, other.generation) + 1
        return ConversationalGenome(
            traits=None, generation=generation, parent_ids=(self.genome_id, other.genome_id)
        )._with_values(np.clip(child, 0.0, 1.0))

    def _child(self, values: np.ndarray, parents: tuple[str, ...]) -> ConversationalGenome:
        return ConversationalGenome(
            generation=self.generation + 1, parent_ids=parents
        )._with_values(values)

    def _with_values(self, values: np.ndarray) -> ConversationalGenome:
        self._values = np.asarray(values, dtype=float).copy()
        return self

    def copy(self) -> ConversationalGenome:
        """An independent copy with the same id, traits, fitness and lineage."""
        clone = ConversationalGenome(
            self.genome_id,
            fitness=self._fitness,
            generation=self.generation,
            parent_ids=self.parent_ids,
        )
        return clone._with_values(self._values)

    # -- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``from_dict(to_dict())`` gives an equal genome."""
        return {
            "genome_id": self.genome_id,
            "traits": self.traits,
            "fitness": self._fitness,
            "generation": self.generation,
            "parent_ids": list(self.parent_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConversationalGenome:
        """Rebuild a genome from ``to_dict`` output; malformed input raises ValidationError.

        ``traits`` must hold all eight traits and no other; ``genome_id``, ``fitness``,
        ``generation`` and ``parent_ids`` may be omitted (a fresh id, None, 0 and no parents),
        but when present they must be valid -- an explicit ``genome_id: null`` is rejected
        rather than silently replaced.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(f"genome data must be a mapping, got {type(data).__name__}")
        unknown = set(data) - _DICT_KEYS
        if unknown:
            raise ValidationError(
                f"unknown genome field(s) {sorted(unknown)}; allowed: {sorted(_DICT_KEYS)}"
            )
        if "traits" not in data or not isinstance(data["traits"], Mapping):
            raise ValidationError("genome data needs a 'traits' mapping")
        missing = [t for t in TRAIT_NAMES if t not in data["traits"]]
        if missing:
            raise ValidationError(f"genome data is missing trait(s) {missing}")
        if "genome_id" in data and not isinstance(data["genome_id"], str):
            raise ValidationError(
                f"genome_id must be a non-empty string, got {data['genome_id']!r}"
            )
        parent_ids = data.get("parent_ids", ())
        if not isinstance(parent_ids, list | tuple):
            raise ValidationError(f"parent_ids must be a list of strings, got {parent_ids!r}")
        return cls(
            data.get("genome_id"),
            data["traits"],
            fitness=data.get("fitness"),
            generation=data.get("generation", 0),
            parent_ids=tuple(parent_ids),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConversationalGenome):
            return NotImplemented
        return (
            self.genome_id == other.genome_id
            and bool(np.array_equal(self._values, other._values))
            and self._fitness == other._fitness
            and self.generation == other.generation
            and self.parent_ids == other.parent_ids
        )

    __hash__ = None  # type: ignore[assignment]  # mutable: equality by value, not hashable

    def __repr__(self) -> str:
        traits = ", ".join(f"{k}={v:.3f}" for k, v in self.traits.items())
        return (
            f"ConversationalGenome(id={self.genome_id[:8]}, gen={self.generation}, "
            f"fitness={self._fitness}, {traits})"
        )


def population_to_array(genomes: Iterable[ConversationalGenome]) -> np.ndarray:
    """Stack genomes into an ``N x 8`` float array (rows in order, columns in TRAIT_NAMES order)."""
    rows = [g._values for g in genomes]
    if not rows:
        return np.empty((0, N_TRAITS))
    return np.vstack(rows)


def population_from_array(
    array: np.ndarray,
    *,
    fitness: Sequence[float] | np.ndarray | None = None,
    generation: int = 0,
) -> list[ConversationalGenome]:
    """Build one independent genome per row of an ``N x 8`` array with values in [0, 1].

    The array and the fitness values are checked once, as arrays; each genome then holds its
    own row of one private copy (rows never overlap, so no two genomes share a trait).
    """
    arr = np.array(array, dtype=float)  # the private copy whose rows the genomes hold
    if arr.ndim != 2 or arr.shape[1] != N_TRAITS:
        raise ValidationError(f"population array must have shape (N, {N_TRAITS}), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min(initial=0.0) < 0 or arr.max(initial=0.0) > 1:
        raise ValidationError("population array values must be finite and in [0, 1]")
    generation = _validate_generation(generation)
    fit: list[float | None]
    if fitness is None:
        fit = [None] * len(arr)
    else:
        checked = np.asarray(fitness, dtype=float)
        if checked.shape != (len(arr),):
            raise ValidationError(f"fitness has {len(checked)} values for {len(arr)} genomes")
        bad = np.flatnonzero(~np.isfinite(checked))
        if len(bad):
            raise ValidationError(
                f"fitness must be a finite number; fitness[{bad[0]}] is {checked[bad[0]]!r}"
            )
        fit = checked.tolist()
    # One random prefix for the batch, a serial per genome: unique ids without a system call
    # per genome.
    prefix = new_genome_id()[:20]
    trusted = ConversationalGenome._trusted
    return [
        trusted(row, f"{prefix}-{i}", f, generation)
        for i, (row, f) in enumerate(zip(arr, fit, strict=True))
    ]
