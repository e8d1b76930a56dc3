"""ConversationalGenome: trait validation, genetic operators, lineage, (de)serialisation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allele.errors import ValidationError
from allele.genome import (
    N_TRAITS,
    TRAIT_NAMES,
    ConversationalGenome,
    population_from_array,
    population_to_array,
)

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
trait_maps = st.fixed_dictionaries({name: unit for name in TRAIT_NAMES})
seeds = st.integers(min_value=0, max_value=2**32 - 1)
genomes = st.builds(
    lambda traits, fitness, generation, parents: ConversationalGenome(
        traits=traits, fitness=fitness, generation=generation, parent_ids=parents
    ),
    trait_maps,
    st.none() | st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=10_000),
    st.lists(st.text(min_size=1, max_size=12), max_size=2).map(tuple),
)


# -- construction and validation -------------------------------------------------------------
def test_traits_default_to_half_and_keep_fixed_order() -> None:
    g = ConversationalGenome(traits={"creativity": 0.8})
    assert list(g.traits) == list(TRAIT_NAMES)
    assert g.traits["creativity"] == 0.8
    assert all(v == 0.5 for k, v in g.traits.items() if k != "creativity")
    assert len(TRAIT_NAMES) == N_TRAITS == 8


@pytest.mark.parametrize(
    ("traits", "match"),
    [
        ({"charisma": 0.5}, "unknown trait 'charisma'"),
        ({"empathy": 1.01}, r"trait 'empathy' must be in \[0, 1\]"),
        ({"empathy": -0.1}, r"trait 'empathy' must be in \[0, 1\]"),
        ({"empathy": math.nan}, "trait 'empathy' must be in"),
        ({"empathy": math.inf}, "trait 'empathy' must be in"),
        ({"empathy": "0.5"}, "trait 'empathy' must be a real number.*str"),
        ({"empathy": True}, "trait 'empathy' must be a real number.*bool"),
        ({"empathy": None}, "trait 'empathy' must be a real number.*NoneType"),
    ],
)
def test_bad_traits_raise_naming_the_trait(traits: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        ConversationalGenome(traits=traits)  # type: ignore[arg-type]


def test_set_trait_value_validates_and_clears_fitness() -> None:
    g = ConversationalGenome(fitness=0.7)
    g.set_trait_value("empathy", 0.25)
    assert g.get_trait_value("empathy") == 0.25
    assert g.fitness is None
    with pytest.raises(ValidationError, match="unknown trait 'wit'"):
        g.set_trait_value("wit", 0.5)
    with pytest.raises(ValidationError, match="'empathy' must be in"):
        g.set_trait_value("empathy", 2.0)
    with pytest.raises(ValidationError, match="unknown trait 'wit'"):
        g.get_trait_value("wit")
    with pytest.raises(ValidationError, match=r"unknown trait \['empathy'\]"):
        g.get_trait_value(["empathy"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"'empathy' must be a real number.*bool"):
        g.set_trait_value("empathy", False)
    assert g.get_trait_value("empathy") == 0.25  # failed sets changed nothing


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fitness": math.nan}, "fitness must be a finite number"),
        ({"fitness": math.inf}, "fitness must be a finite number"),
        ({"fitness": "high"}, "fitness must be a finite number"),
        ({"generation": -1}, "generation must be an integer >= 0"),
        ({"generation": 1.5}, "generation must be an integer >= 0"),
        ({"parent_ids": "abc"}, "parent_ids must be a sequence of strings"),
        ({"parent_ids": [1, 2]}, "parent_ids must be a sequence of strings"),
        ({"parent_ids": 5}, "parent_ids must be a sequence of strings"),
        ({"parent_ids": None}, "parent_ids must be a sequence of strings"),
        ({"traits": {("empathy",): 0.5}}, r"unknown trait \('empathy',\)"),
        ({"genome_id": ""}, "genome_id must be a non-empty string"),
        ({"traits": [0.5] * 8}, "traits must be a mapping"),
    ],
)
def test_bad_metadata_is_rejected(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        ConversationalGenome(**kwargs)  # type: ignore[arg-type]


def test_traits_and_values_are_copies() -> None:
    g = ConversationalGenome(traits={"empathy": 0.3})
    g.traits["empathy"] = 0.9
    g.values[0] = 0.9
    assert g.get_trait_value("empathy") == 0.3


def test_ids_are_unique_and_genomes_unhashable() -> None:
    assert len({ConversationalGenome().genome_id for _ in range(100)}) == 100
    with pytest.raises(TypeError):
        hash(ConversationalGenome())


# -- operators -------------------------------------------------------------------------------
def test_mutate_and_crossover_reject_bad_parameters() -> None:
    g = ConversationalGenome()
    with pytest.raises(ValidationError, match=r"rate must be a number in \[0, 1\]"):
        g.mutate(rate=1.5)
    with pytest.raises(ValidationError, match=r"strength must be a number in \(0, inf\), got 0"):
        g.mutate(strength=0)
    with pytest.raises(ValidationError, match=r"strength must be a number in \(0, inf\)"):
        g.mutate(strength=math.nan)
    with pytest.raises(ValidationError, match=r"strength must be a number in \(0, inf\)"):
        g.mutate(strength=math.inf)
    with pytest.raises(ValidationError, match=r"rate must be a number.*bool"):
        g.mutate(rate=True)
    with pytest.raises(ValidationError, match="rng must be a numpy Generator"):
        g.mutate(rng="seed")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="needs another ConversationalGenome"):
        g.crossover({"empathy": 0.1})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"alpha must be a number in \[0, inf\)"):
        g.crossover(ConversationalGenome(), alpha=-0.1)


def test_mutation_rate_zero_copies_traits_and_rate_one_changes_all() -> None:
    g = ConversationalGenome(traits=dict.fromkeys(TRAIT_NAMES, 0.5))
    same = g.mutate(rate=0.0, strength=0.3, rng=1)
    assert np.array_equal(same.values, g.values)
    moved = g.mutate(rate=1.0, strength=0.05, rng=1)
    assert np.all(moved.values != 0.5)


def test_operators_are_deterministic_per_seed() -> None:
    a = ConversationalGenome(traits={"empathy": 0.1})
    b = ConversationalGenome(traits={"empathy": 0.9})
    assert np.array_equal(a.mutate(0.5, 0.2, 7).values, a.mutate(0.5, 0.2, 7).values)
    assert np.array_equal(a.crossover(b, 7).values, a.crossover(b, 7).values)
    assert not np.array_equal(a.mutate(1.0, 0.2, 7).values, a.mutate(1.0, 0.2, 8).values)


def test_blend_crossover_without_alpha_stays_between_parents() -> None:
    a = ConversationalGenome(traits=dict.fromkeys(TRAIT_NAMES, 0.2))
    b = ConversationalGenome(traits=dict.fromkeys(TRAIT_NAMES, 0.6))
    rng = np.random.default_rng(3)
    children = np.array([a.crossover(b, rng, alpha=0.0).values for _ in range(200)])
    assert children.min() >= 0.2 and children.max() <= 0.6
    assert children.std() > 0.05  # a blend, not a copy of either parent


@settings(max_examples=60, deadline=None)
@given(
    genomes,
    unit,
    st.floats(min_value=1e-3, max_value=5.0),
    seeds,
)
def test_mutate_keeps_traits_in_range_and_parent_unchanged(
    g: ConversationalGenome, rate: float, strength: float, seed: int
) -> None:
    before = g.to_dict()
    child = g.mutate(rate, strength, seed)
    assert np.all((child.values >= 0.0) & (child.values <= 1.0))
    assert g.to_dict() == before
    assert child.parent_ids == (g.genome_id,)
    assert child.generation == g.generation + 1
    assert child.genome_id != g.genome_id
    assert child.fitness is None


@settings(max_examples=60, deadline=None)
@given(genomes, genomes, seeds, st.floats(min_value=0.0, max_value=2.0))
def test_crossover_keeps_traits_in_range_and_parents_unchanged(
    a: ConversationalGenome, b: ConversationalGenome, seed: int, alpha: float
) -> None:
    before_a, before_b = a.to_dict(), b.to_dict()
    child = a.crossover(b, seed, alpha=alpha)
    assert np.all((child.values >= 0.0) & (child.values <= 1.0))
    assert a.to_dict() == before_a and b.to_dict() == before_b
    assert child.parent_ids == (a.genome_id, b.genome_id)
    assert child.generation == max(a.generation, b.generation) + 1
    assert child.fitness is None


@settings(max_examples=60, deadline=None)
@given(genomes, seeds)
def test_child_does_not_alias_parent(g: ConversationalGenome, seed: int) -> None:
    child = g.mutate(0.0, 0.1, seed)
    child.set_trait_value("empathy", 0.0 if g.get_trait_value("empathy") > 0.5 else 1.0)
    assert child.get_trait_value("empathy") != g.get_trait_value("empathy")


# -- serialisation ---------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(genomes)
def test_dict_round_trip_is_exact_through_json(g: ConversationalGenome) -> None:
    data = json.loads(json.dumps(g.to_dict()))
    back = ConversationalGenome.from_dict(data)
    assert back == g
    assert back.values.tobytes() == g.values.tobytes()


@settings(max_examples=60, deadline=None)
@given(genomes)
def test_copy_is_equal_and_independent(g: ConversationalGenome) -> None:
    clone = g.copy()
    assert clone == g and clone is not g
    clone.set_trait_value("creativity", 1.0 if g.get_trait_value("creativity") < 1 else 0.0)
    assert clone != g


def _valid_dict() -> dict[str, object]:
    return ConversationalGenome(traits={"empathy": 0.4}, fitness=0.5, parent_ids=("p",)).to_dict()


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.pop("traits"), "needs a 'traits' mapping"),
        (lambda d: d.__setitem__("traits", [0.5] * 8), "needs a 'traits' mapping"),
        (lambda d: d["traits"].pop("empathy"), r"missing trait\(s\) \['empathy'\]"),
        (lambda d: d["traits"].__setitem__("wit", 0.5), "unknown trait 'wit'"),
        (lambda d: d["traits"].__setitem__("empathy", 3), "'empathy' must be in"),
        (lambda d: d.__setitem__("colour", "red"), r"unknown genome field\(s\) \['colour'\]"),
        (lambda d: d.__setitem__("fitness", "good"), "fitness must be a finite number"),
        (lambda d: d.__setitem__("generation", -2), "generation must be an integer"),
        (lambda d: d.__setitem__("parent_ids", "p"), "parent_ids must be a list"),
        (lambda d: d.__setitem__("parent_ids", [3]), "parent_ids must be a sequence of strings"),
        (lambda d: d.__setitem__("genome_id", 12), "genome_id must be a non-empty string"),
        (lambda d: d.__setitem__("genome_id", ""), "genome_id must be a non-empty string"),
        (lambda d: d.__setitem__("genome_id", ["a"]), "genome_id must be a non-empty string"),
        (lambda d: d.__setitem__("genome_id", None), "genome_id must be a non-empty string"),
        (lambda d: d.__setitem__("traits", None), "needs a 'traits' mapping"),
        (lambda d: d.__setitem__("traits", "empathy=1"), "needs a 'traits' mapping"),
        (lambda d: d["traits"].__setitem__("empathy", True), "'empathy' must be a real.*bool"),
        (lambda d: d["traits"].__setitem__("empathy", "0.5"), "'empathy' must be a real.*str"),
        (lambda d: d["traits"].__setitem__("empathy", None), "'empathy' must be a real.*None"),
        (lambda d: d["traits"].__setitem__("empathy", math.nan), "'empathy' must be in"),
        (lambda d: d["traits"].__setitem__("empathy", -0.5), "'empathy' must be in"),
        (lambda d: d["traits"].__setitem__("empathy", {"v": 0.5}), "'empathy' must be a real"),
        (lambda d: d["traits"].__setitem__("empathy", [0.5]), "'empathy' must be a real.*list"),
        (lambda d: d.__setitem__("fitness", True), "fitness must be a finite number"),
        (lambda d: d.__setitem__("fitness", math.nan), "fitness must be a finite number"),
        (lambda d: d.__setitem__("fitness", [0.5]), "fitness must be a finite number"),
        (lambda d: d.__setitem__("generation", True), "generation must be an integer"),
        (lambda d: d.__setitem__("generation", 1.5), "generation must be an integer"),
        (lambda d: d.__setitem__("generation", "3"), "generation must be an integer"),
        (lambda d: d.__setitem__("parent_ids", None), "parent_ids must be a list"),
        (lambda d: d.__setitem__("parent_ids", {"p": 1}), "parent_ids must be a list"),
        (lambda d: d.__setitem__("parent_ids", [["p"]]), "parent_ids must be a sequence of str"),
    ],
)
def test_malformed_dicts_are_rejected(mutate, match: str) -> None:  # type: ignore[no-untyped-def]
    data = _valid_dict()
    mutate(data)
    with pytest.raises(ValidationError, match=match):
        ConversationalGenome.from_dict(data)


def test_from_dict_rejects_non_mapping() -> None:
    for bad, kind in [([1, 2], "list"), (None, "NoneType"), ("{}", "str")]:
        with pytest.raises(ValidationError, match=f"must be a mapping, got {kind}"):
            ConversationalGenome.from_dict(bad)  # type: ignore[arg-type]


def test_from_dict_fills_omitted_metadata_with_documented_defaults() -> None:
    traits = dict.fromkeys(TRAIT_NAMES, 0.25)
    g = ConversationalGenome.from_dict({"traits": traits})
    assert g.traits == traits and g.fitness is None and g.generation == 0 and g.parent_ids == ()
    assert len(g.genome_id) == 32


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(genomes, st.sampled_from(sorted(_valid_dict())), json_values)
def test_any_corrupted_field_gives_a_genome_or_a_validation_error(
    g: ConversationalGenome, field: str, garbage: object
) -> None:
    # Whatever JSON-shaped value lands in a field, from_dict either accepts it as valid data
    # or raises ValidationError -- never a TypeError, KeyError or a half-built genome.
    data = g.to_dict()
    data[field] = garbage
    try:
        back = ConversationalGenome.from_dict(data)
    except ValidationError:
        return
    assert back.to_dict()[field] == garbage
    assert np.all((back.values >= 0) & (back.values <= 1))


@settings(max_examples=100, deadline=None)
@given(genomes, st.sampled_from(TRAIT_NAMES), json_values)
def test_any_corrupted_trait_gives_a_genome_or_a_validation_error(
    g: ConversationalGenome, trait: str, garbage: object
) -> None:
    data = g.to_dict()
    data["traits"][trait] = garbage
    try:
        back = ConversationalGenome.from_dict(data)
    except ValidationError as exc:
        assert repr(trait) in str(exc)  # the message names the trait
        return
    assert isinstance(garbage, int | float) and back.get_trait_value(trait) == garbage


# -- population arrays -----------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.lists(genomes, min_size=1, max_size=20))
def test_population_array_round_trip(population: list[ConversationalGenome]) -> None:
    array = population_to_array(population)
    assert array.shape == (len(population), N_TRAITS)
    fitness = np.arange(len(population), dtype=float)
    back = population_from_array(array, fitness=fitness, generation=3)
    assert np.array_equal(population_to_array(back), array)
    assert [g.fitness for g in back] == fitness.tolist()
    assert all(g.generation == 3 for g in back)
    original = array[0, 0]
    array[0, 0] = 0.25 if original != 0.25 else 0.75  # the genomes do not share the array
    assert back[0].values[0] == original


def test_population_rows_follow_trait_order() -> None:
    g = ConversationalGenome(traits={name: i / 10 for i, name in enumerate(TRAIT_NAMES)})
    assert population_to_array([g])[0].tolist() == [i / 10 for i in range(8)]
    assert population_to_array([]).shape == (0, N_TRAITS)


def test_population_from_array_rejects_bad_arrays() -> None:
    with pytest.raises(ValidationError, match=r"shape \(N, 8\), got \(3, 7\)"):
        population_from_array(np.zeros((3, 7)))
    with pytest.raises(ValidationError, match=r"finite and in \[0, 1\]"):
        population_from_array(np.full((2, 8), 1.5))
    with pytest.raises(ValidationError, match=r"finite and in \[0, 1\]"):
        population_from_array(np.full((2, 8), np.nan))
    with pytest.raises(ValidationError, match="fitness has 1 values for 2 genomes"):
        population_from_array(np.zeros((2, 8)), fitness=[0.1])
    with pytest.raises(ValidationError, match="fitness must be a finite number"):
        population_from_array(np.zeros((2, 8)), fitness=[0.1, math.nan])


def test_population_from_array_builds_independent_genomes() -> None:
    array = np.full((3, 8), 0.5)
    population = population_from_array(array)
    population[0].set_trait_value("empathy", 0.9)
    assert population[1].get_trait_value("empathy") == 0.5
    assert array[0, 0] == 0.5
    assert len({g.genome_id for g in population}) == 3


def test_population_from_array_checks_once_and_builds_valid_genomes() -> None:
    array = np.random.default_rng(0).random((5, N_TRAITS))
    population = population_from_array(array, fitness=np.arange(5.0), generation=2)
    assert [g.fitness for g in population] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert len({g.genome_id for g in population}) == 5
    assert all(g.generation == 2 and g.parent_ids == () for g in population)
    # Built without per-genome checks, the genomes still behave like any other.
    clone = ConversationalGenome.from_dict(population[3].to_dict())
    assert clone == population[3]
    with pytest.raises(ValidationError, match="generation must be an integer"):
        population_from_array(array, generation=-1)


def test_constructor_fast_paths_keep_the_checks() -> None:
    with pytest.raises(ValidationError, match="generation must be an integer"):
        ConversationalGenome(generation=True)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="parent_ids must be a sequence"):
        ConversationalGenome(parent_ids="ab")
    g = ConversationalGenome()
    assert len(g.genome_id) == 32 and int(g.genome_id, 16) >= 0
    assert g.values.tolist() == [0.5] * N_TRAITS
