"""The CMA-ES optimizer on disk as JSON plus npz: loading it builds only whitelisted pycma objects, never runs code.

A pickle from a downloaded archive or bucket could run anything on resume. Here `es-state.json` holds the object
graph (containers, scalars, whitelisted classes and functions by name, shared objects by id) and `es-state.npz`
every numpy array, read without pickle. The walk restores the objects' attributes as they were, so a resumed
run continues bit for bit.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import cma
import numpy as np
from cma import evolution_strategy as es_module
from cma.utilities import utils

from worldmodels.errors import WorldModelsError

JSON_NAME, ARRAYS_NAME = "es-state.json", "es-state.npz"
FORMAT = "worldmodels-cma-es-state/1"


def global_randn(*shape: int) -> np.ndarray:
    """pycma's sampler, by name: numpy's global generator, which training seeds per generation so a resumed
    run repeats exactly (a stored copy of a generator would not follow that seeding)."""
    return np.random.randn(*shape)


def new_optimizer(mean: np.ndarray, sigma: float, popsize: int, covariance: str = "full",
                  scales: np.ndarray | None = None) -> cma.CMAEvolutionStrategy:
    """The options of every run, new or restarted from an old-format generation; `scales` multiplies `sigma`
    coordinate by coordinate (pycma's CMA_stds).

    A diagonal covariance (separable CMA-ES) learns its 867 variances about n/3 times faster than the full
    matrix learns its 376k entries, and costs O(n) instead of O(n^2) per sample."""
    options = {"popsize": popsize, "randn": global_randn, "verbose": -9, "CMA_diagonal": covariance == "diagonal"}
    if scales is not None:
        options["CMA_stds"] = np.asarray(scales, np.float64)
    return cma.CMAEvolutionStrategy(mean, sigma, options)


def _by_name(*items) -> dict:
    return {f"{item.__module__}.{item.__qualname__}": item for item in items}


# The classes pycma 4.x builds for the options above (TPA and the empty archive appear in high dimension;
# GaussStandardConstant with a diagonal covariance).
CLASSES = _by_name(
    es_module.CMAEvolutionStrategy, es_module._CMASolutionDict_functional, es_module._CMASolutionDict_empty,
    es_module._CMAStopDict, es_module._StopTolXStagnation, cma.boundary_handler.BoundNone, cma.logger.CMADataLogger,
    cma.optimization_tools.BestSolution, cma.options_parameters.CMAOptions, cma.options_parameters.CMAParameters,
    cma.recombination_weights.RecombinationWeights, cma.sampler.GaussFullSampler, cma.sampler.GaussStandardConstant,
    cma.sigma_adaptation.CMAAdaptSigmaCSA, cma.sigma_adaptation.CMAAdaptSigmaTPA, cma.sigma_adaptation._TPAParameters,
    cma.transformations.DiagonalDecoding, cma.transformations.GenoPheno, cma.transformations.RoundIntegerVariables,
    utils.BlancClass, utils.DictFromTagsInString, utils.ElapsedWCTime, utils.MoreToWrite, utils.SolutionDict)
# Functions and classes the options and objects refer to (stored by name, never called while loading).
REFERENCES = _by_name(global_randn, np.linalg.eigh, cma.options_parameters.is_feasible, es_module._pass,
                      cma.boundary_handler.BoundTransform)
_CLASS_NAMES = {cls: name for name, cls in CLASSES.items()}
_REFERENCE_NAMES = {id(item): name for name, item in REFERENCES.items()}
_PLAIN = (bool, int, float, str, type(None))  # exact types: numpy's float64 subclasses float
_TAGS = ("ref", "function", "scalar", "range", "tuple", "array", "list", "dict", "object")


class _Corrupt(WorldModelsError):
    def __init__(self, path: Path, what: str):
        super().__init__(f"{path}: corrupt optimizer state ({what}); delete {path.parent} to resume from the "
                         "generation before")


class _Writer:
    """Encodes a value as JSON; arrays go to `self.arrays`, objects seen twice become references by id."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.ids: dict[int, tuple[int, object]] = {}  # holding the object keeps its id() unique

    def remember(self, value) -> int:
        self.ids[id(value)] = (len(self.ids), value)
        return len(self.ids) - 1

    def array(self, value: np.ndarray) -> str:
        if value.dtype.hasobject:
            raise TypeError("cannot store an object array in the optimizer state")
        self.arrays[f"a{len(self.arrays)}"] = value
        return f"a{len(self.arrays) - 1}"

    def node(self, value):
        kind = type(value)
        if kind in _PLAIN:
            return value
        if id(value) in self.ids:
            return {"ref": self.ids[id(value)][0]}
        if id(value) in _REFERENCE_NAMES:
            return {"function": _REFERENCE_NAMES[id(value)]}
        if isinstance(value, np.generic):
            return {"scalar": self.array(np.asarray(value))}
        if kind is range:
            return {"range": [value.start, value.stop, value.step]}
        if kind is tuple:  # registered after its items: the reader can only build it then
            items = [self.node(item) for item in value]
            return {"tuple": items, "id": self.remember(value)}
        if kind not in (np.ndarray, list, dict) and (kind not in _CLASS_NAMES or _has_slots(kind)):
            raise TypeError(f"cannot store a {kind.__module__}.{kind.__qualname__}: add it to es_state.CLASSES "
                            "if restoring its __dict__ is safe and complete")
        node = {"id": self.remember(value)}
        if kind is np.ndarray:
            node["array"] = self.array(value)
        elif kind is list:
            node["list"] = [self.node(item) for item in value]
        elif kind is dict:
            node["dict"] = self.pairs(value)
        else:
            node["object"] = _CLASS_NAMES[kind]
            node["attrs"] = {name: self.node(item) for name, item in vars(value).items()}
            if isinstance(value, dict):  # pycma's dict and list subclasses: their contents too
                node["pairs"] = self.pairs(value)
            elif isinstance(value, list):
                node["items"] = [self.node(item) for item in list.__iter__(value)]
        return node

    def pairs(self, value: dict) -> list:
        return [[self.node(key), self.node(item)] for key, item in dict.items(value)]


def _has_slots(cls: type) -> bool:
    """Slot values live outside `__dict__`: such a class would need more than the walk stores."""
    return any(set(klass.__dict__.get("__slots__", ())) - {"__dict__", "__weakref__"} for klass in cls.__mro__)


class _Reader:
    """Decodes what `_Writer` wrote, in the same order, refusing anything outside the whitelists."""

    def __init__(self, path: Path, arrays, arrays_path: Path):
        self.path, self.arrays, self.arrays_path = path, arrays, arrays_path
        self.objects: dict[int, object] = {}

    def node(self, node):
        if type(node) in _PLAIN:
            return node
        tags = [tag for tag in _TAGS if type(node) is dict and tag in node]
        if len(tags) != 1:
            raise _Corrupt(self.path, f"unexpected {type(node).__name__} node")
        tag, value = tags[0], node[tags[0]]
        if tag == "ref":
            return self.lookup(self.objects, value, "reference to undefined object {!r}")
        if tag == "function":
            return self.lookup(REFERENCES, value, "function {!r} is not whitelisted")
        if tag == "scalar":
            return self.array(value, ndim=0)[()]
        if tag == "range":
            return range(*[self.expect(item, int) for item in self.expect(value, list)])
        if tag == "tuple":
            return self.register(node, tuple(self.node(item) for item in self.expect(value, list)))
        if tag == "array":
            return self.register(node, self.array(value))
        if tag == "list":
            return self.fill_list(self.register(node, []), value)
        if tag == "dict":
            return self.fill_dict(self.register(node, {}), value)
        return self.instance(node, self.lookup(CLASSES, value, "class {!r} is not whitelisted"))

    def lookup(self, table: dict, key, problem: str):
        if type(key) not in (int, str) or key not in table:
            raise _Corrupt(self.path, problem.format(key))
        return table[key]

    def register(self, node: dict, value):
        ident = node.get("id")
        if type(ident) is not int or ident in self.objects:
            raise _Corrupt(self.path, f"bad object id {ident!r}")
        self.objects[ident] = value
        return value

    def array(self, key, ndim: int | None = None) -> np.ndarray:
        try:
            array = self.arrays[key]
        except KeyError:
            raise _Corrupt(self.arrays_path, f"array {key!r} missing") from None
        except (ValueError, OSError, EOFError) as error:  # object arrays refuse to load without pickle
            raise _Corrupt(self.arrays_path, f"array {key!r} unreadable: {str(error).splitlines()[0]}") from None
        if type(array) is not np.ndarray or ndim not in (None, array.ndim):  # a member that is not .npy: bytes
            raise _Corrupt(self.arrays_path, f"{key!r} is not a numpy array of the expected shape")
        return array

    def instance(self, node: dict, cls: type):
        """A whitelisted pycma object, its attributes set as they were (no constructor or method runs)."""
        value = self.register(node, cls.__new__(cls))
        value.__dict__.update({name: self.node(item) for name, item in self.expect(node["attrs"], dict).items()})
        if "pairs" in node:
            self.fill_dict(value, node["pairs"])
        if "items" in node:
            self.fill_list(value, node["items"])
        return value

    def fill_list(self, target: list, items) -> list:
        list.extend(target, [self.node(item) for item in self.expect(items, list)])
        return target

    def fill_dict(self, target: dict, pairs) -> dict:
        for pair in self.expect(pairs, list):
            key, item = self.expect(pair, list)
            dict.__setitem__(target, self.node(key), self.node(item))
        return target

    def expect(self, value, kind: type):
        if type(value) is not kind:
            raise _Corrupt(self.path, f"{kind.__name__} expected, found {type(value).__name__}")
        return value


def save_es_state(es: cma.CMAEvolutionStrategy, folder: Path) -> None:
    """Write `es-state.json` and `es-state.npz` into `folder`."""
    writer = _Writer()
    document = {"format": FORMAT, "pycma": cma.__version__, "root": writer.node(es)}
    (folder / JSON_NAME).write_text(json.dumps(document))
    np.savez(folder / ARRAYS_NAME, **writer.arrays)


def load_es_state(folder: Path) -> cma.CMAEvolutionStrategy:
    """The optimizer `save_es_state` wrote; anything else in the files raises `WorldModelsError`."""
    path, arrays_path = folder / JSON_NAME, folder / ARRAYS_NAME
    try:
        document = _read_document(path)
        with _open_arrays(arrays_path) as arrays:
            es = _Reader(path, arrays, arrays_path).node(document["root"])
    except FileNotFoundError as error:
        raise WorldModelsError(f"{error.filename}: optimizer state missing; delete {folder} to resume from "
                               "the generation before") from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as error:
        raise _Corrupt(path, f"malformed: {type(error).__name__}") from None
    if type(es) is not es_module.CMAEvolutionStrategy:
        raise _Corrupt(path, "no CMAEvolutionStrategy at the root")
    return es


def _read_document(path: Path) -> dict:
    try:
        document = json.loads(path.read_text())
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError too
        raise _Corrupt(path, f"invalid JSON: {type(error).__name__}") from None
    if type(document) is not dict or document.get("format") != FORMAT or "root" not in document:
        raise _Corrupt(path, f"not a {FORMAT} document")
    return document


def _open_arrays(path: Path) -> np.lib.npyio.NpzFile:
    try:
        arrays = np.load(path, allow_pickle=False)  # a pickle, or an array of objects in the archive, is refused
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise _Corrupt(path, f"unreadable: {type(error).__name__}") from None
    if not isinstance(arrays, np.lib.npyio.NpzFile):
        raise _Corrupt(path, "a single array, not an npz archive")
    return arrays
