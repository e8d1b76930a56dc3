"""Registered models in MLflow: component models, aliases, promotion and comparison of versions.

A registered model version is an MLflow pyfunc model built from code (``mlflow_integration/
models/``: the model's code file and its state as JSON, never a pickle), stored as artifacts of
an MLflow run (the run given, else the model's own ``registry-<name>`` run in the experiment
``ALLELE_MLFLOW_EXPERIMENT_PREFIX + "registry"``) and registered with tags describing it.
Components are any object with a documented dict form: ``to_dict()`` and a classmethod
``from_dict(data)`` that rebuilds it (the anomaly detectors follow this contract); a
``KrakenLNN`` is stored as its constructor parameters (its ``seed`` makes the reservoir
reproducible) and its fitted readout.

Aliases replace MLflow's deprecated stages: ``champion`` is the version in use, ``challenger``
the one being tried. ``promote(name, version, to="champion")`` moves ``champion`` only when the
candidate is significantly better than the current champion by the benchmarking comparison
(``compare.compare_runs``: Mann-Whitney U with Benjamini-Hochberg q-values and Hodges-Lehmann
shifts beyond each cell's floor) of the suite runs the two versions were measured in (their
``allele.suite_id`` tags, read from the Allele store): at least one cell improved and none
regressed. Otherwise it refuses and says why; ``force=True`` promotes anyway and records that it
was forced on the version (``allele.promotion.<alias>``).
"""

from __future__ import annotations

import atexit
import json
import logging
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from allele.errors import ConfigurationError, ValidationError
from allele.observability.benchmarking.model import PRIMARY_METRIC
from allele.observability.mlflow_integration.client import load_mlflow, open_client
from allele.observability.mlflow_integration.config import artifact_location, mlflow_config
from allele.observability.types import MLflowConfig

logger = logging.getLogger(__name__)

ALIASES = ("champion", "challenger")
SUITE_TAG = "allele.suite_id"
KIND_TAG = "allele.kind"
REGISTRY_EXPERIMENT = "registry"
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
_KRAKEN_PARAMS = (
    "reservoir_size",
    "connectivity",
    "spectral_radius",
    "input_scaling",
    "leak_rate",
    "noise",
    "temperature",
    "seed",
    "input_size",
    "memory_capacity",
    "bias_scaling",
)


@dataclass
class Promotion:
    """The outcome of ``promote``: whether the alias moved, and why (or why not)."""

    name: str
    version: str
    alias: str
    promoted: bool
    reason: str
    forced: bool = False
    previous: str | None = None
    comparison: Any = None


@dataclass
class VersionComparison:
    """Two versions of a registered model side by side: their differing tags and measurements."""

    name: str
    first: Any
    second: Any
    differences: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    comparison: Any = None
    note: str = ""


def kraken_state(kraken: Any) -> dict[str, Any]:
    """A KrakenLNN's dict form: its parameters and fitted readout (the seed rebuilds weights)."""
    if kraken.seed is None:
        raise ValidationError(
            "a KrakenLNN without a seed cannot be registered: its reservoir weights are random; "
            "create it with seed=<int> so loading rebuilds the same reservoir"
        )
    readout = None if kraken.readout_ is None else np.asarray(kraken.readout_).tolist()
    return {"params": {k: getattr(kraken, k) for k in _KRAKEN_PARAMS}, "readout": readout}


def kraken_from_state(state: dict[str, Any]) -> Any:
    """The KrakenLNN of ``kraken_state`` output: same weights, same readout."""
    from allele.kraken import KrakenLNN

    kraken = KrakenLNN(**state["params"])
    if state.get("readout") is not None:
        kraken.readout_ = np.asarray(state["readout"], dtype=float)
    return kraken


def component_state(component: Any) -> dict[str, Any]:
    """``{"class": "module:QualName", "state": ...}``: what a component model stores."""
    from allele.kraken import KrakenLNN

    cls = type(component)
    if cls is KrakenLNN:
        # The public path, not the defining module's: stored versions outlive module moves.
        return {"class": "allele.kraken:KrakenLNN", "state": kraken_state(component)}
    path = f"{cls.__module__}:{cls.__qualname__}"
    to_dict = getattr(component, "to_dict", None)
    if not callable(to_dict) or not callable(getattr(cls, "from_dict", None)):
        raise ValidationError(
            f"cannot register a {cls.__name__}: a component model needs to_dict() and a "
            "classmethod from_dict(data) that rebuilds it (or a seeded KrakenLNN)"
        )
    state = to_dict()
    json.dumps(state)  # fails now, with the component's name, rather than in MLflow
    return {"class": path, "state": state}


class ModelRegistry:
    """Allele's models in the MLflow model registry (``ALLELE_MLFLOW_MODEL_REGISTRY_URI``)."""

    def __init__(self, config: MLflowConfig | None = None, *, client: Any = None) -> None:
        self.config = config or mlflow_config()
        if not self.config.model_registry_enabled:
            raise ConfigurationError(
                "the MLflow model registry is disabled (ALLELE_MLFLOW_MODEL_REGISTRY_ENABLED="
                "false); set it to true to register, promote or compare models"
            )
        self.client = client if client is not None else open_client(self.config)
        self._models: set[str] = set()
        self._storage_runs: dict[str, str] = {}
        self._artifact_uris: dict[str, str] = {}

    # registering -------------------------------------------------------------------------------

    def register_component(
        self,
        component: Any,
        name: str,
        *,
        suite_id: str | None = None,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        description: str | None = None,
    ) -> Any:
        """Register ``component`` as a new version of ``name``; returns the ModelVersion."""
        from allele.observability.mlflow_integration.models import component_model

        state = component_state(component)
        version_tags = {KIND_TAG: "component", "allele.class": state["class"], **(tags or {})}
        if suite_id:
            version_tags[SUITE_TAG] = suite_id
        return self._register(
            name,
            component_model.__file__,
            component_model.COMPONENT_ARTIFACT,
            state,
            version_tags,
            description,
            run_id,
        )

    def load_component(self, name: str, ref: str | int) -> Any:
        """The component registered as version (or alias) ``ref`` of ``name``, rebuilt."""
        return self.load_model(name, ref).unwrap_python_model().component

    def load_model(self, name: str, ref: str | int) -> Any:
        """The pyfunc model of version (or alias) ``ref`` of ``name``."""
        mlflow = load_mlflow()
        version = self.version(name, ref)
        # Downloaded through this registry's tracking URI (not MLflow's process-wide one); the
        # model reads its state when loaded, so the files may go afterwards.
        with tempfile.TemporaryDirectory(prefix="allele-model-") as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=version.source, dst_path=tmp, tracking_uri=self.config.tracking_uri
            )
            return mlflow.pyfunc.load_model(local)

    def _register(
        self,
        name: str,
        code_file: str,
        artifact: str,
        state: Any,
        tags: dict[str, str],
        description: str | None,
        run_id: str | None,
    ) -> Any:
        _check_name(name)
        self._ensure_model(name)
        run_id = run_id or self._storage_run(name)
        with tempfile.TemporaryDirectory(prefix="allele-model-") as tmp:
            model_dir = _model_dir(Path(tmp), code_file, artifact, state)
            folder = f"models/{name}/{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}"
            self._upload(run_id, model_dir, folder)
        source = f"{self._artifact_uri(run_id)}/{folder}"
        # The SQL registry creates a version READY at once; MLflow's default would ask again
        # to check (one more request per version).
        version = self.client.create_model_version(
            name, source, run_id=run_id, tags=tags, description=description, await_creation_for=0
        )
        if getattr(version, "status", "READY") == "PENDING_REGISTRATION":
            version = self._await_ready(name, str(version.version))
        return version

    def _await_ready(self, name: str, number: str, timeout: float = 300.0) -> Any:
        """Wait for a registry that creates versions asynchronously (as MLflow would)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            version = self.client.get_model_version(name, number)
            if version.status != "PENDING_REGISTRATION" or time.monotonic() > deadline:
                return version
            time.sleep(0.5)

    def _artifact_uri(self, run_id: str) -> str:
        found = self._artifact_uris.get(run_id)
        if found is None:
            found = self._artifact_uris[run_id] = str(self.client.get_run(run_id).info.artifact_uri)
        return found

    def _upload(self, run_id: str, model_dir: Path, folder: str) -> None:
        """Upload the model's files side by side (a handful of small files)."""
        files = [p for p in model_dir.rglob("*") if p.is_file()]

        def put(path: Path) -> None:
            parent = path.parent.relative_to(model_dir).as_posix()
            self.client.log_artifact(
                run_id, str(path), folder if parent == "." else f"{folder}/{parent}"
            )

        with ThreadPoolExecutor(min(8, len(files))) as pool:
            list(pool.map(put, files))

    def _ensure_model(self, name: str) -> None:
        if name in self._models:
            return
        try:
            self.client.create_registered_model(name, tags={"allele.managed": "true"})
        except Exception as exc:
            if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                raise
        self._models.add(name)

    def _storage_run(self, name: str) -> str:
        """The run that holds the artifacts of ``name``'s versions when no run is given."""
        found = self._storage_runs.get(name)
        if found:
            return found
        experiment = f"{self.config.experiment_prefix}{REGISTRY_EXPERIMENT}"
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            try:
                experiment_id = self.client.create_experiment(
                    experiment, artifact_location=artifact_location(self.config)
                )
            except Exception as exc:
                if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                    raise
                experiment_id = self.client.get_experiment_by_name(experiment).experiment_id
        else:
            experiment_id = exp.experiment_id
        runs = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`allele.registry_model` = '{name}'", max_results=1
        )
        if runs:
            run_id = runs[0].info.run_id
        else:
            run = self.client.create_run(
                experiment_id, tags={"allele.registry_model": name}, run_name=f"registry-{name}"
            )
            run_id = run.info.run_id
            self.client.set_terminated(run_id, "FINISHED")
        self._storage_runs[name] = run_id
        return str(run_id)

    # versions and aliases ------------------------------------------------------------------------

    def version(self, name: str, ref: str | int) -> Any:
        """The ModelVersion ``ref`` of ``name``: a version number, or an alias (``champion``)."""
        text = str(ref).lstrip("@")
        try:
            if text.isdigit():
                return self.client.get_model_version(name, text)
            return self.client.get_model_version_by_alias(name, text)
        except Exception as exc:
            if getattr(exc, "error_code", None) in _MISSING:
                raise ValidationError(
                    f"registered model {name!r} has no version or alias {ref!r}"
                ) from None
            raise

    def aliases(self, name: str) -> dict[str, str]:
        """Alias -> version number of ``name``."""
        return {k: str(v) for k, v in self.client.get_registered_model(name).aliases.items()}

    def promote(
        self,
        name: str,
        version: str | int,
        *,
        to: str = "champion",
        store: Any = None,
        metric: str = PRIMARY_METRIC,
        higher_is_better: bool = False,
        alpha: float = 0.05,
        threshold: float = 0.05,
        force: bool = False,
    ) -> Promotion:
        """Point alias ``to`` at ``version`` when the benchmarks justify it (see module doc)."""
        if to not in ALIASES:
            raise ValidationError(f"alias must be one of {list(ALIASES)}, got {to!r}")
        text = str(version).lstrip("@")
        # A version number needs no lookup unless it is compared (moving the alias checks it).
        number = text if text.isdigit() else str(self.version(name, text).version)
        current = self.aliases(name).get(to)
        if current == number:
            already = f"version {number} is already {to}"
            return Promotion(name, number, to, False, already, previous=current)
        comparison = None
        if force:
            reason = "forced"
        elif to != "champion":
            reason = f"{to} is set without a comparison (only champion needs one)"
        elif current is None:
            reason = "there is no champion yet"
        else:
            champion, candidate = self.version(name, current), self.version(name, number)
            comparison, refusal = self._judge(
                champion, candidate, store, metric, higher_is_better, alpha, threshold
            )
            if refusal:
                return Promotion(name, number, to, False, refusal, False, current, comparison)
            reason = _better_text(comparison, current, number)
        self._move_alias(name, number, to, reason, force, current)
        return Promotion(name, number, to, True, reason, force, current, comparison)

    def _move_alias(
        self, name: str, number: str, alias: str, reason: str, forced: bool, previous: str | None
    ) -> None:
        record = {
            "at": datetime.now(UTC).isoformat(),
            "forced": forced,
            "previous": previous,
            "reason": reason,
        }
        tag = f"allele.promotion.{alias}"
        # The alias and the record of why are two independent requests: sent at once, one
        # round trip instead of two. The record is taken back when the alias did not move.
        with ThreadPoolExecutor(1) as pool:
            recorded = pool.submit(
                self.client.set_model_version_tag, name, number, tag, json.dumps(record)[:8000]
            )
            try:
                self.client.set_registered_model_alias(name, alias, number)
            except Exception as exc:
                if recorded.exception() is None:
                    _quietly(self.client.delete_model_version_tag, name, number, tag)
                if getattr(exc, "error_code", None) in _MISSING:
                    raise ValidationError(
                        f"registered model {name!r} has no version {number!r}"
                    ) from None
                raise
            recorded.result()

    def _judge(
        self,
        champion: Any,
        candidate: Any,
        store: Any,
        metric: str,
        higher_is_better: bool,
        alpha: float,
        threshold: float,
    ) -> tuple[Any, str | None]:
        """The Comparison of the two versions' suite runs, and why the candidate is refused."""
        comparison, note = self._compare_measurements(
            champion, candidate, store, metric, higher_is_better, alpha, threshold
        )
        if comparison is None:
            return None, f"cannot compare with champion v{champion.version}: {note}; use --force"
        counts = comparison.counts()
        if counts["regression"]:
            worse = ", ".join(c.key for c in comparison.regressions[:5])
            return comparison, (
                f"v{candidate.version} regressed in {counts['regression']} of "
                f"{len(comparison.cells)} cells against champion v{champion.version} "
                f"({metric}: {worse})"
            )
        if not counts["improvement"]:
            return comparison, (
                f"v{candidate.version} is not significantly better than champion "
                f"v{champion.version}: no cell of {len(comparison.cells)} improved on {metric} "
                f"beyond its floor with q < {alpha} ({counts['unchanged']} unchanged)"
            )
        return comparison, None

    def _compare_measurements(
        self,
        first: Any,
        second: Any,
        store: Any,
        metric: str,
        higher_is_better: bool,
        alpha: float,
        threshold: float,
    ) -> tuple[Any, str]:
        from allele.observability.benchmarking import storage
        from allele.observability.benchmarking.compare import compare_runs

        ids = [v.tags.get(SUITE_TAG) for v in (first, second)]
        missing = [f"v{v.version}" for v, i in zip((first, second), ids, strict=True) if not i]
        if missing:
            return None, f"{' and '.join(missing)} name no suite run ({SUITE_TAG} tag)"
        if store is None:
            return None, "no Allele store to read the measurements from"
        try:
            before, after = (storage.load_run(store, str(i)) for i in ids)
        except Exception as exc:
            return None, f"the suite runs are not in the store ({exc})"
        comparison = compare_runs(
            before,
            after,
            metric=metric,
            higher_is_better=higher_is_better,
            alpha=alpha,
            threshold=threshold,
            noise=storage.load_calibration(store, after.name),
        )
        return comparison, ""

    def compare(
        self,
        name: str,
        first: str | int,
        second: str | int,
        *,
        store: Any = None,
        metric: str = PRIMARY_METRIC,
        higher_is_better: bool = False,
        alpha: float = 0.05,
        threshold: float = 0.05,
    ) -> VersionComparison:
        """Versions ``first`` and ``second`` of ``name``: tags that differ, and the benchmark
        comparison of their suite runs (``second`` against ``first``) when both have one."""
        a, b = self.version(name, first), self.version(name, second)
        keys = sorted(set(a.tags) | set(b.tags))
        differences = {
            k: (a.tags.get(k), b.tags.get(k))
            for k in keys
            if a.tags.get(k) != b.tags.get(k) and not k.startswith("allele.promotion.")
        }
        comparison, note = self._compare_measurements(
            a, b, store, metric, higher_is_better, alpha, threshold
        )
        return VersionComparison(name, a, b, differences, comparison, note)


def _better_text(comparison: Any, champion: str, candidate: str) -> str:
    counts = comparison.counts()
    return (
        f"v{candidate} is significantly better than champion v{champion} on "
        f"{comparison.metric}: {counts['improvement']} of {len(comparison.cells)} cells improved, "
        "none regressed"
    )


# One pyfunc model directory per models-from-code file, saved once per process: saving runs the
# code file and writes the environment files, tens of milliseconds that are the same for every
# version. A version is a copy of it with its own state file and its own MLmodel identity.
_TEMPLATES: dict[tuple[str, str], Path] = {}
_TEMPLATES_LOCK = threading.Lock()


def _template(code_file: str, artifact: str) -> Path:
    with _TEMPLATES_LOCK:
        found = _TEMPLATES.get((code_file, artifact))
        if found is not None and (found / "MLmodel").is_file():
            return found
        mlflow = load_mlflow()
        root = Path(tempfile.mkdtemp(prefix="allele-model-template-"))
        atexit.register(shutil.rmtree, root, True)
        placeholder = root / f"{artifact}.json"
        placeholder.write_text("{}", encoding="utf-8")
        mlflow.pyfunc.save_model(
            str(root / "model"),
            python_model=code_file,
            artifacts={artifact: str(placeholder)},
            # Pinned explicitly: MLflow would otherwise infer requirements by importing.
            pip_requirements=[f"allele=={_allele_version()}", f"mlflow=={mlflow.__version__}"],
        )
        _TEMPLATES[(code_file, artifact)] = root / "model"
        return root / "model"


def _model_dir(folder: Path, code_file: str, artifact: str, state: Any) -> Path:
    """A pyfunc model directory in ``folder`` for ``code_file`` holding ``state`` as JSON."""
    import uuid

    from mlflow.models import Model

    template = _template(code_file, artifact)
    target = folder / "model"
    shutil.copytree(template, target)
    model = Model.load(str(target / "MLmodel"))
    info = model.flavors["python_function"]["artifacts"][artifact]
    state_path = target / info["path"]
    state_path.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
    info["uri"] = str(state_path)
    model.model_uuid = uuid.uuid4().hex
    model.utc_time_created = str(datetime.now(UTC).replace(tzinfo=None))
    model.model_size_bytes = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    model.save(str(target / "MLmodel"))
    return target


def _quietly(call: Any, *args: Any) -> None:
    try:
        call(*args)
    except Exception:  # the error being raised is the one that matters
        logger.warning("MLflow registry: could not undo %s%s", call.__name__, args)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 256 or "/" in name:
        raise ValidationError(
            f"a registered model name must be 1-256 characters without '/', got {name!r}"
        )


def _allele_version() -> str:
    import allele

    return allele.__version__
