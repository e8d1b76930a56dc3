"""Observable workloads record the values the workloads themselves report."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import numpy as np
import pytest

from allele.agent import AgentConfig, NLPAgent, ProviderCallError
from allele.errors import ValidationError
from allele.evolution import EvolutionConfig, EvolutionEngine
from allele.fitness import TargetPersonality
from allele.genome import ConversationalGenome
from allele.kraken import KrakenLNN
from allele.observability.collector import ERRORS_METRIC, LATENCY_METRIC, OPERATIONS_METRIC
from allele.observability.config import ObservabilitySettings
from allele.observability.engine import ObservabilityEngine
from allele.observability.integration import (
    AGENT_TOKENS,
    EVOLUTION_BEST,
    EVOLUTION_DIVERSITY,
    EVOLUTION_EVALUATIONS,
    EVOLUTION_GENERATION,
    EVOLUTION_MEAN,
    EVOLUTION_WORST,
    KRAKEN_ACTIVATION_MAX_ABS,
    KRAKEN_ACTIVATION_MEAN,
    KRAKEN_ACTIVATION_STD,
    KRAKEN_MEMORY_SIZE,
    KRAKEN_SEQUENCES,
    KRAKEN_STEPS,
    MONITORING_ERRORS_METRIC,
    AgentMonitor,
    EvolutionMonitor,
    KrakenMonitor,
    ObservableEvolutionEngine,
    ObservableKrakenLNN,
    ObservableNLPAgent,
    create_observable_evolution_engine,
    create_observable_kraken_lnn,
    create_observable_nlp_agent,
    observe,
)
from allele.observability.integration.evolution import generation_columns
from allele.observability.types import ComponentType, HealthStatus

TARGET = TargetPersonality({"empathy": 0.9, "conciseness": 0.2})
INSTANT = {"ttft_s": 0.0, "per_token_s": 0.0}


@pytest.fixture
def obs():
    engine = ObservabilityEngine(ObservabilitySettings(store_uri="none"), notifiers=[])
    yield engine
    engine.close()


def values(obs, name, monitor, **labels):
    """The recorded values of one series of ``monitor``'s component, after a tick (reads see
    what the last tick folded)."""
    obs.tick()
    return obs.collector.points(name, {**monitor.recorder.labels, **labels})[1]


def counter_total(obs, name, monitor, **labels):
    found = values(obs, name, monitor, **labels)
    return float(found[-1]) if found.size else 0.0


def config(**overrides):
    return EvolutionConfig(**{"population_size": 20, "generations": 12, "seed": 3, **overrides})


# -- evolution ----------------------------------------------------------------------------------
def test_observable_evolution_records_one_point_per_generation_equal_to_its_stats(obs):
    engine = ObservableEvolutionEngine(config(), engine=obs)
    result = engine.run(TARGET)
    history = result.history
    assert len(history) == 13  # generation 0 plus 12 bred
    m = engine.monitor
    np.testing.assert_array_equal(values(obs, EVOLUTION_BEST, m), [s.best_fitness for s in history])
    np.testing.assert_array_equal(values(obs, EVOLUTION_MEAN, m), [s.mean_fitness for s in history])
    np.testing.assert_array_equal(
        values(obs, EVOLUTION_WORST, m), [s.worst_fitness for s in history]
    )
    np.testing.assert_array_equal(
        values(obs, EVOLUTION_DIVERSITY, m), [s.diversity for s in history]
    )
    np.testing.assert_array_equal(values(obs, EVOLUTION_GENERATION, m), list(range(13)))
    np.testing.assert_array_equal(
        values(obs, LATENCY_METRIC, m, operation="generation"), [s.duration_s for s in history]
    )
    assert counter_total(obs, EVOLUTION_EVALUATIONS, m) == result.evaluations
    ok = counter_total(obs, OPERATIONS_METRIC, m, operation="generation", outcome="success")
    assert ok == 13
    assert values(obs, LATENCY_METRIC, m, operation="run").size == 1
    assert m.errors == 0 and engine.callback_errors == 0


def test_exported_generations_are_ordered_in_time_within_the_run(tmp_path):
    import json

    from allele.observability.export.files import export_series
    from allele.observability.store import open_store

    uri = f"sqlite:///{tmp_path / 'evolution.db'}"
    obs = ObservabilityEngine(ObservabilitySettings(store_uri=uri), notifiers=[])
    try:
        obs.start()
        engine = ObservableEvolutionEngine(config(generations=10), engine=obs)
        before = time.time()
        result = engine.run(TARGET)
        after = time.time()
        time.sleep(0.01)
        second = engine.run(TARGET)  # a second run: its generations come after the first's
        obs.stop()
    finally:
        obs.close()
    out = tmp_path / "series.json"
    with open_store(uri) as store:
        export_series(store, "json", out)
    exported = {
        (s["name"], s["labels"].get("operation")): s for s in json.loads(out.read_text())["series"]
    }
    history = result.history
    for name in (EVOLUTION_BEST, EVOLUTION_GENERATION, LATENCY_METRIC):
        series = exported[(name, "generation" if name == LATENCY_METRIC else None)]
        ts = np.array(series["timestamps"])
        assert ts.size == 2 * len(history) == 22
        assert (np.diff(ts) > 0).all()  # strictly increasing, generation after generation
        first = ts[: len(history)]
        assert before <= first[0] and first[-1] <= after  # inside the first run's span
        assert ts[len(history)] > after  # the second run starts after the first ended
        if name == EVOLUTION_BEST:
            assert series["values"][: len(history)] == [s.best_fitness for s in history]
        if name == EVOLUTION_GENERATION:
            assert series["values"] == list(range(11)) * 2
    # Every exported point carries its generation's own end time, exactly.
    stamps = [s.timestamp for s in history + second.history]
    for name in (EVOLUTION_BEST, EVOLUTION_MEAN, EVOLUTION_DIVERSITY, EVOLUTION_GENERATION):
        assert exported[(name, None)]["timestamps"] == stamps
    assert exported[(LATENCY_METRIC, "generation")]["timestamps"] == stamps


def test_generations_recorded_late_keep_their_own_end_times(obs):
    engine = ObservableEvolutionEngine(config(generations=3), engine=obs)
    m = engine.monitor
    EvolutionEngine.run(engine, TARGET)  # the base method: nothing is recorded at its end
    time.sleep(0.02)
    before_push = time.time()
    obs.tick()  # the monitor pushes the run its run() wrapper did not see end
    stamps = [s.timestamp for s in engine.history]
    assert stamps[-1] < before_push  # the points were not stamped when they were recorded
    for name in (EVOLUTION_BEST, EVOLUTION_WORST, EVOLUTION_GENERATION):
        ts, _ = obs.collector.points(name, m.recorder.labels)
        assert ts.tolist() == stamps
    ts, _ = obs.collector.points(LATENCY_METRIC, {**m.recorder.labels, "operation": "generation"})
    assert ts.tolist() == stamps


def test_observable_engine_is_an_evolution_engine_with_the_same_results(obs):
    observed = create_observable_evolution_engine(config(), engine=obs)
    plain = EvolutionEngine(config())
    assert isinstance(observed, EvolutionEngine)
    a, b = observed.run(TARGET), plain.run(TARGET)
    assert a.best.values.tolist() == b.best.values.tolist()
    assert [s.best_fitness for s in a.history] == [s.best_fitness for s in b.history]
    seen = []
    observed.add_callback(seen.append)
    observed.run(TARGET)
    assert len(seen) == 13  # user callbacks still run alongside the monitor


def test_generations_are_recorded_at_the_runs_end_and_on_ticks_not_per_generation(obs):
    engine = ObservableEvolutionEngine(config(generations=25), engine=obs)
    m = engine.monitor
    pending = m.recorder.collector._series  # peek: nothing may be queued per generation
    best_key = next(k for k in pending if k.name == EVOLUTION_BEST)
    queued_at = {}
    read_at = {}

    def watch(stats):
        series = pending[best_key]
        queued_at[stats.generation] = len(series.buf) + len(series.tbuf)
        if stats.generation in (9, 19):
            # A tick pushes the run in progress: every generation run so far.
            read_at[stats.generation] = values(obs, EVOLUTION_BEST, m).size

    engine.run(TARGET, callback=watch)
    assert set(queued_at.values()) == {0}  # the evolving thread recorded nothing itself
    assert read_at == {9: 10, 19: 20}
    # The run's end hands the rest over as one table: the next fold takes it in.
    assert pending[best_key].tbuf == [] and len(obs.collector._tables) == 1
    assert values(obs, EVOLUTION_BEST, m).tolist() == [s.best_fitness for s in engine.history]
    for _ in range(3):  # runs ending between two folds are all recorded, in order
        engine.run(TARGET)
    generations = values(obs, EVOLUTION_GENERATION, m)
    assert generations.tolist() == list(range(26)) * 4
    ts, _ = obs.collector.points(EVOLUTION_GENERATION, m.recorder.labels)
    assert (np.diff(ts) > 0).all()
    assert engine.callback_errors == 0 and m.errors == 0


def test_generation_columns_hold_exactly_the_generation_statistics(obs):
    engine = EvolutionEngine(config(generations=6))
    result = engine.run(TARGET)
    columns = generation_columns(result.history)
    assert columns.dtype == np.float64 and columns.shape == (8, 7)
    assert all(row.flags.c_contiguous for row in columns)
    fields = ("timestamp", "best_fitness", "mean_fitness", "worst_fitness", "diversity")
    fields += ("generation", "duration_s", "evaluations")
    for name, row in zip(fields, columns, strict=True):
        # Exact equality: the same floats, integers as float64.
        assert row.tolist() == [float(getattr(s, name)) for s in result.history], name


def test_a_monitor_does_not_keep_its_engine_alive(obs):
    import gc
    import weakref

    engine = ObservableEvolutionEngine(config(generations=2), engine=obs)
    engine.run(TARGET)
    alive = weakref.ref(engine)
    del engine
    gc.collect()
    assert alive() is None
    obs.tick()  # the orphaned recorder is gone with its monitor


async def test_async_evolve_and_async_fitness_record_every_generation_once(obs):
    async def fitness(genome):
        await asyncio.sleep(0)
        return 1.0 - abs(genome.get_trait_value("empathy") - 0.9)

    engine = ObservableEvolutionEngine(config(generations=4), engine=obs)
    best = await engine.evolve(engine.initialize_population(), fitness)
    history = engine.history
    m = engine.monitor
    np.testing.assert_array_equal(values(obs, EVOLUTION_BEST, m), [s.best_fitness for s in history])
    assert best.fitness == max(s.best_fitness for s in history)
    assert values(obs, LATENCY_METRIC, m, operation="run").size == 1


def test_run_with_an_async_fitness_records_the_run_once(obs):
    async def fitness(genome):
        return genome.get_trait_value("empathy")

    engine = ObservableEvolutionEngine(config(generations=3), engine=obs)
    engine.run(fitness)
    assert values(obs, LATENCY_METRIC, engine.monitor, operation="run").size == 1
    assert values(obs, EVOLUTION_BEST, engine.monitor).size == 4


def test_a_failing_run_is_recorded_as_an_error_and_still_raises(obs):
    calls = {"n": 0}

    def fitness(genome):
        calls["n"] += 1
        if calls["n"] > 45:  # generation 0 (20 genomes) and part of generation 1 succeed
            raise RuntimeError("fitness service down")
        return 0.5

    engine = ObservableEvolutionEngine(config(), engine=obs)
    with pytest.raises(RuntimeError, match="fitness service down"):
        engine.run(fitness)
    m = engine.monitor
    errors = counter_total(obs, ERRORS_METRIC, m, operation="run", error_type="RuntimeError")
    assert errors == 1
    assert values(obs, EVOLUTION_BEST, m).size == len(engine.history)


def test_observe_attaches_to_a_plain_engine_and_detach_stops_it(obs):
    plain = EvolutionEngine(config(generations=5))
    monitor = observe(plain, engine=obs, component_id="evo-plain")
    assert isinstance(monitor, EvolutionMonitor) and monitor.component_id == "evo-plain"
    assert observe(plain, engine=obs) is monitor  # never attached twice
    result = plain.run(TARGET)
    np.testing.assert_array_equal(
        values(obs, EVOLUTION_BEST, monitor), [s.best_fitness for s in result.history]
    )
    assert values(obs, LATENCY_METRIC, monitor, operation="run").size == 1
    assert obs.get_component_metrics("evo-plain").component_type is ComponentType.EVOLUTION_ENGINE
    monitor.detach()
    assert "run" not in vars(plain) and "_allele_monitor" not in vars(plain)
    plain.run(TARGET)
    assert values(obs, EVOLUTION_BEST, monitor).size == 6
    with pytest.raises(ValidationError, match="unknown component 'evo-plain'"):
        obs.get_component_metrics("evo-plain")  # detached: unregistered


def test_a_raising_recorder_does_not_break_evolution(obs, caplog):
    engine = ObservableEvolutionEngine(config(), engine=obs)

    def broken(handles, timestamps, table, copy=True):
        raise RuntimeError("collector broken")

    engine.monitor._record_table = broken  # the bulk recording of the batched monitor
    with caplog.at_level(logging.WARNING, logger="allele.observability.integration"):
        result = engine.run(TARGET)
        obs.tick()  # the fold that records the run
    reference = EvolutionEngine(config()).run(TARGET)
    assert result.best_fitness == reference.best_fitness
    assert engine.monitor.errors >= 1 and engine.callback_errors == 0
    errors_counted = counter_total(obs, MONITORING_ERRORS_METRIC, engine.monitor)
    assert errors_counted == engine.monitor.errors
    assert "collector broken" in caplog.text


def test_plain_engine_recorder_failures_are_counted_per_run(obs):
    plain = EvolutionEngine(config(generations=4))
    monitor = observe(plain, engine=obs)

    def broken(handles, timestamps, table, copy=True):
        raise ValueError("bad table")

    monitor._record_table = broken
    reference = EvolutionEngine(config(generations=4)).run(TARGET)
    assert plain.run(TARGET).best_fitness == reference.best_fitness
    plain.run(TARGET)
    assert monitor.errors == 2 and plain.callback_errors == 0


# -- kraken --------------------------------------------------------------------------------------
def sequences(n=5, steps=12, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, steps))


def test_kraken_records_one_latency_per_sequence_and_the_memory_fill(obs):
    net = ObservableKrakenLNN(
        reservoir_size=30, seed=1, memory_capacity=3, engine=obs, state_interval_s=0
    )
    fills = []
    started = time.perf_counter()
    for seq in sequences():
        net.process_sequence(seq)
        fills.append(len(net.memory))
        obs.tick()  # a fold per sequence: the memory fill is sampled at each fold
    elapsed = time.perf_counter() - started
    m = net.monitor
    latencies = values(obs, LATENCY_METRIC, m, operation="sequence")
    assert latencies.size == 5 and (latencies > 0).all()
    assert latencies.sum() <= elapsed  # real timings of the calls inside the loop
    assert counter_total(obs, OPERATIONS_METRIC, m, operation="sequence", outcome="success") == 5
    np.testing.assert_array_equal(values(obs, KRAKEN_MEMORY_SIZE, m), fills)
    assert fills == [1, 2, 3, 3, 3]
    assert counter_total(obs, KRAKEN_SEQUENCES, m) == 5
    assert counter_total(obs, KRAKEN_STEPS, m) == 5 * 12
    state = net.get_network_state()
    assert values(obs, KRAKEN_ACTIVATION_MEAN, m)[-1] == pytest.approx(state["mean_activation"])
    assert values(obs, KRAKEN_ACTIVATION_STD, m)[-1] == pytest.approx(state["std_activation"])
    assert values(obs, KRAKEN_ACTIVATION_MAX_ABS, m)[-1] == pytest.approx(
        state["max_abs_activation"]
    )
    obs.tick()
    assert obs.get_component_metrics(m.component_id).health is HealthStatus.HEALTHY


def test_observable_kraken_gives_the_same_results_as_the_plain_network(obs):
    observed = create_observable_kraken_lnn(reservoir_size=30, seed=4, engine=obs)
    plain = KrakenLNN(reservoir_size=30, seed=4)
    assert isinstance(observed, KrakenLNN) and observed.reservoir_size == 30
    for seq in sequences():
        a, b = observed.process_sequence(seq), plain.process_sequence(seq)
        np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(observed.state_, plain.state_)


def test_kraken_records_in_bulk_at_the_fold_and_counts_what_the_network_counts(obs):
    net = ObservableKrakenLNN(reservoir_size=20, seed=1, memory_capacity=3, engine=obs)
    m = net.monitor
    for seq in sequences(n=4, steps=9):
        net.process_sequence(seq)
    assert len(m.latencies) == 4  # the hot path only appended the latencies
    net.process_batch(sequences(n=2, steps=5))
    obs.tick()
    assert m.latencies == []
    assert values(obs, LATENCY_METRIC, m, operation="sequence").size == 4
    assert values(obs, KRAKEN_MEMORY_SIZE, m).tolist() == [3.0]  # one fold, one sample
    assert counter_total(obs, KRAKEN_SEQUENCES, m) == net.sequences_processed == 6
    assert counter_total(obs, KRAKEN_STEPS, m) == net.steps_processed == 4 * 9 + 2 * 5
    obs.tick()  # nothing new: no new points
    assert values(obs, KRAKEN_MEMORY_SIZE, m).tolist() == [3.0]


def test_state_statistics_are_sampled_at_most_once_per_interval(obs):
    net = ObservableKrakenLNN(reservoir_size=20, seed=1, engine=obs, state_interval_s=1e9)
    for seq in sequences():
        net.process_sequence(seq)
    assert values(obs, KRAKEN_ACTIVATION_MEAN, net.monitor).size == 1  # the first sequence
    assert values(obs, LATENCY_METRIC, net.monitor, operation="sequence").size == 5


def test_kraken_batch_is_one_operation_of_many_sequences(obs):
    net = ObservableKrakenLNN(reservoir_size=20, seed=1, engine=obs)
    net.process_batch(sequences(n=4, steps=7))
    m = net.monitor
    assert values(obs, LATENCY_METRIC, m, operation="batch").size == 1
    assert counter_total(obs, KRAKEN_SEQUENCES, m) == 4
    assert counter_total(obs, KRAKEN_STEPS, m) == 28
    assert values(obs, KRAKEN_MEMORY_SIZE, m).tolist() == [4.0]


async def test_async_kraken_processing_is_recorded_inline_and_in_a_thread(obs):
    net = ObservableKrakenLNN(reservoir_size=100, seed=2, engine=obs)
    await net.aprocess_sequence(np.sin(np.arange(10.0)))  # small: runs inline
    await net.aprocess_sequence(np.sin(np.arange(400.0)))  # 400 x 100 units: a worker thread
    await net.aprocess_batch(sequences(n=2, steps=5))
    m = net.monitor
    assert values(obs, LATENCY_METRIC, m, operation="sequence").size == 2
    assert values(obs, LATENCY_METRIC, m, operation="batch").size == 1
    assert counter_total(obs, KRAKEN_STEPS, m) == 10 + 400 + 10


def test_bad_kraken_input_is_recorded_as_an_error_and_raised(obs):
    net = ObservableKrakenLNN(reservoir_size=20, seed=1, engine=obs)
    with pytest.raises(ValidationError):
        net.process_sequence([[1.0, 2.0]])  # input_size is 1
    errors = counter_total(
        obs, ERRORS_METRIC, net.monitor, operation="sequence", error_type="ValidationError"
    )
    assert errors == 1 and net.monitor.errors == 0


def test_observe_wraps_a_plain_network_and_detach_restores_it(obs):
    net = KrakenLNN(reservoir_size=20, seed=1, memory_capacity=2)
    monitor = observe(net, engine=obs)
    assert isinstance(monitor, KrakenMonitor) and observe(net, engine=obs) is monitor
    for seq in sequences(n=3):
        net.process_sequence(seq)
        obs.tick()
    assert values(obs, KRAKEN_MEMORY_SIZE, monitor).tolist() == [1.0, 2.0, 2.0]
    monitor.detach()
    assert "process_sequence" not in vars(net) and "_allele_monitor" not in vars(net)
    net.process_sequence(sequences(n=1)[0])
    assert values(obs, LATENCY_METRIC, monitor, operation="sequence").size == 3
    assert net.sequences_processed == 4


def test_a_raising_recorder_does_not_break_kraken(obs):
    net = ObservableKrakenLNN(reservoir_size=20, seed=1, engine=obs)
    plain = KrakenLNN(reservoir_size=20, seed=1)

    def broken(value):
        raise RuntimeError("gauge broken")

    net.monitor._memory_size = broken
    for seq in sequences(n=3):
        np.testing.assert_array_equal(
            net.process_sequence(seq).final_state, plain.process_sequence(seq).final_state
        )
        obs.tick()  # the memory fill is recorded at the fold, where the gauge raises
    assert net.monitor.errors == 3
    assert counter_total(obs, MONITORING_ERRORS_METRIC, net.monitor) == 3


def test_state_interval_must_be_a_non_negative_number(obs):
    with pytest.raises(ValidationError, match="state_interval_s"):
        ObservableKrakenLNN(reservoir_size=10, engine=obs, state_interval_s=-1)


# -- nlp agent -----------------------------------------------------------------------------------
def agent_config(**synthetic):
    return AgentConfig(provider="synthetic", max_retries=0, synthetic={**INSTANT, **synthetic})


async def test_agent_tokens_and_latency_equal_the_agents_own_metrics(obs):
    agent = create_observable_nlp_agent(ConversationalGenome(), agent_config(), engine=obs)
    assert isinstance(agent, NLPAgent) and isinstance(agent.monitor, AgentMonitor)
    async with agent:
        for i in range(4):
            await agent.complete(f"hello {i}")
        async for _ in agent.chat("stream please"):
            pass
    own = agent.get_metrics()
    m = agent.monitor
    assert own["tokens_in"] > 0 and own["tokens_out"] > 0
    assert counter_total(obs, AGENT_TOKENS, m, direction="in") == own["tokens_in"]
    assert counter_total(obs, AGENT_TOKENS, m, direction="out") == own["tokens_out"]
    latencies = values(obs, LATENCY_METRIC, m, operation="request")
    assert latencies.size == 5
    assert sorted(latencies) == pytest.approx(sorted(agent._metrics.latency_s))
    ok = counter_total(obs, OPERATIONS_METRIC, m, operation="request", outcome="success")
    assert ok == own["successes"] == 5


async def test_agent_errors_are_recorded_by_kind(obs):
    agent = ObservableNLPAgent(
        ConversationalGenome(),
        agent_config(seed=11, error_rate=0.5, error_kinds=("server", "timeout", "rate_limit")),
        engine=obs,
    )
    async with agent:
        for i in range(30):
            with contextlib.suppress(ProviderCallError):
                await agent.complete(f"m{i}")
    by_kind = agent.get_metrics()["errors_by_kind"]
    assert sum(by_kind.values()) >= 3
    recorded = {
        kind: counter_total(obs, ERRORS_METRIC, agent.monitor, operation="request", error_type=kind)
        for kind in by_kind
    }
    assert recorded == by_kind
    obs.tick()
    perf = obs.get_component_metrics(agent.monitor.component_id).performance
    assert perf.error_count == sum(by_kind.values()) and perf.operation_count == 30


async def test_a_raising_recorder_does_not_break_the_agent(obs):
    agent = NLPAgent(ConversationalGenome(), agent_config())
    monitor = observe(agent, engine=obs)

    def broken(value):
        raise RuntimeError("counter broken")

    monitor._tokens_in = broken
    async with agent:
        replies = [await agent.complete(f"q{i}") for i in range(3)]
    assert all(replies)
    assert monitor.errors == 3
    assert agent.get_metrics()["listener_errors"] == 0  # caught by the monitor itself


# -- observe() -----------------------------------------------------------------------------------
def test_observe_rejects_unknown_components_naming_the_type(obs):
    class Toaster:
        pass

    with pytest.raises(ValidationError, match=r"Toaster.*EvolutionEngine, KrakenLNN, NLPAgent"):
        observe(Toaster(), engine=obs)


def test_observe_returns_the_monitor_of_an_observable_component(obs):
    engine = ObservableEvolutionEngine(config(), engine=obs)
    assert observe(engine) is engine.monitor


def test_component_ids_must_be_non_empty_strings(obs):
    with pytest.raises(ValidationError, match="component_id"):
        ObservableEvolutionEngine(config(), engine=obs, component_id="")


def test_generations_with_non_numeric_statistics_are_validated_one_by_one(obs):
    # The columns path needs plain numbers; a statistic that is not one (a string numpy would
    # parse as a number) takes the per-value path and is dropped and counted by the fold.
    from allele.evolution import GenerationStats

    plain = EvolutionEngine(config())
    monitor = EvolutionMonitor(engine=obs).attach(plain)
    t0 = time.time() - 10
    plain.history = [
        GenerationStats(0, 0.5, 0.25, 0.0, 0.2, 50, 0.001, 50, t0),
        GenerationStats(1, "0.75", 0.5, 0.1, 0.2, 40, 0.002, 50, t0 + 1),  # type: ignore[arg-type]
    ]
    obs.tick()  # the monitor pushes the history it has not recorded
    ts, best = obs.collector.points(EVOLUTION_BEST, monitor.recorder.labels)
    assert best.tolist() == [0.5] and ts.tolist() == [t0]
    _, mean = obs.collector.points(EVOLUTION_MEAN, monitor.recorder.labels)
    assert mean.tolist() == [0.25, 0.5]
    assert counter_total(obs, EVOLUTION_EVALUATIONS, monitor) == 90
    assert obs.collector.dropped().get("not_a_number") == 1
    assert monitor.errors == 0


def test_an_ended_runs_statistics_are_not_kept_alive_until_the_next_fold(obs):
    # A run's end turns the run's statistics into columns at once: the GenerationStats objects
    # die with the run (freed by reference counting, with the garbage collector off), yet
    # every generation is recorded at the next fold with its values and times.
    import gc
    import weakref

    engine = ObservableEvolutionEngine(config(generations=5), engine=obs)
    gc.disable()
    try:
        first = engine.run(TARGET).history
        expected = [(s.timestamp, s.best_fitness) for s in first]
        evaluations = sum(s.evaluations for s in first)
        refs = [weakref.ref(s) for s in first]
        del first
        second = engine.run(TARGET).history  # replaces engine.history; no fold in between
        assert all(ref() is None for ref in refs)
    finally:
        gc.enable()
    expected += [(s.timestamp, s.best_fitness) for s in second]
    obs.tick()
    ts, best = obs.collector.points(EVOLUTION_BEST, engine.monitor.recorder.labels)
    assert list(zip(ts.tolist(), best.tolist(), strict=True)) == expected
    evaluations += sum(s.evaluations for s in second)
    assert counter_total(obs, EVOLUTION_EVALUATIONS, engine.monitor) == evaluations
    assert engine.monitor.errors == 0


# -- detaching and idle batch workloads ------------------------------------------------------
def stale_alerts(engine, component_id):
    return [
        a
        for a in engine.get_active_alerts(include_pending=True)
        if a.rule_name.endswith("_heartbeat_stale") and a.component_id == component_id
    ]


def test_a_detached_component_never_fires_heartbeat_stale():
    from allele.observability.clock import ManualClock

    clock = ManualClock()
    engine = ObservabilityEngine(
        ObservabilitySettings(store_uri="none", heartbeat_timeout=10.0), clock=clock, notifiers=[]
    )
    try:
        net = KrakenLNN(reservoir_size=10, seed=1)
        monitor = observe(net, engine=engine)
        net.process_sequence(sequences(n=1)[0])
        engine.tick()  # the push heartbeats
        monitor.detach()
        for _ in range(10):
            clock.advance(30)
            engine.collect_once()
        assert stale_alerts(engine, monitor.component_id) == []
        assert all(
            s.stale
            for s in engine.collector.snapshot()
            if dict(s.key.labels).get("component_id") == monitor.component_id
        )
        # Still registered, the same silence fires the alert (the rule is live).
        other = observe(KrakenLNN(reservoir_size=10, seed=1), engine=engine)
        other._target.process_sequence(sequences(n=1)[0])
        engine.tick()
        for _ in range(10):
            clock.advance(30)
            engine.collect_once()
        assert stale_alerts(engine, other.component_id) != []
    finally:
        engine.close()


def test_an_evolution_engine_between_runs_is_idle_not_stale():
    from allele.observability.clock import ManualClock

    clock = ManualClock()
    engine = ObservabilityEngine(
        ObservabilitySettings(store_uri="none", heartbeat_timeout=10.0), clock=clock, notifiers=[]
    )
    try:
        evo = ObservableEvolutionEngine(config(generations=2), engine=engine)
        evo.run(TARGET)
        for _ in range(10):  # five minutes without a run
            clock.advance(30)
            engine.collect_once()
        assert stale_alerts(engine, evo.monitor.component_id) == []
        snapshot = engine.get_component_metrics(evo.monitor.component_id)
        assert snapshot.idle and not snapshot.stale
        assert snapshot.health is HealthStatus.HEALTHY
        during = []

        def watch(stats):
            engine.tick()  # the tick pushes the run in progress, which heartbeats
            during.append(evo.monitor.recorder.idle_since is None)

        evo.run(TARGET, callback=watch)  # a run in progress is not idle; its end is again
        assert during == [True, True, True] and evo.monitor.recorder.idle_since is not None
    finally:
        engine.close()


def test_every_write_of_the_flusher_holds_what_monitors_keep_on_the_workload_thread(tmp_path):
    # The flusher's own writes (periodic, and the last one on SIGTERM, SIGINT or exit, which
    # call flusher.flush()) push the monitors' raw records first: nothing waits for a tick.
    from allele.observability.store import open_store

    uri = f"sqlite:///{tmp_path / 'pushed.db'}"
    settings = ObservabilitySettings(store_uri=uri, flush_interval=3600, collection_interval=3600)
    engine = ObservabilityEngine(settings, notifiers=[])
    try:
        engine.start()
        net = ObservableKrakenLNN(reservoir_size=10, seed=1, engine=engine, component_id="k")
        for seq in sequences(n=7):
            net.process_sequence(seq)
        assert len(net.monitor.latencies) == 7  # only appended so far
        engine._flusher.flush()  # what the signal handlers do
        with open_store(uri) as store:
            stored = store.query_series(
                LATENCY_METRIC, {"component_id": "k", "operation": "sequence"}
            )
            assert len(stored) == 7
            assert store.query_series(KRAKEN_SEQUENCES, {"component_id": "k"}).values[-1] == 7
    finally:
        engine.close()
