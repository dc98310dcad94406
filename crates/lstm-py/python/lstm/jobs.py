"""The three jobs of ``lstm train``, Keras and scikit-learn style.

:class:`TextModel`, :class:`Forecaster` and :class:`Classifier` take the binary's settings as
keyword arguments under the names of its configuration file (``hidden=128``, ``layers=1``,
``steps=2000``, ``minutes=5``, ``precision="bf16"`` for mixed-precision training on a CPU with
AVX-512 BF16 or AMX, ...; see :func:`settings`), train with ``fit`` and answer with
``generate``, ``predict`` and ``evaluate``. ``save(dir)`` writes the model directory that
``lstm generate``, ``lstm forecast`` and ``lstm classify`` read, and :func:`load` reads one
that ``lstm train`` wrote.

Data reach the engine as files, written to a temporary directory: the binary and Python then
read exactly the same input in the same way.
"""

from __future__ import annotations

import bisect
import copy
import copyreg
import csv
import datetime
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
import warnings
import weakref
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    overload,
)

import numpy as np

from . import _lstm

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["TextModel", "Forecaster", "Classifier", "load", "settings", "History", "DataError"]


class DataError(_lstm.LstmError, ValueError):
    """Data that cannot be used (a missing column, a non-numeric cell, a series too short...):
    both a ``ValueError`` and an ``lstm.LstmError``. For data given as a DataFrame, array or
    list, the message names "the data" and DataFrame rows (from 0, with their index labels when
    these differ: ``row 15 (index 20)``), not the temporary file the library read."""


def _ours(path: Any) -> bool:
    """Whether ``path`` is a file this module wrote for the library (from a DataFrame, ...)."""
    return path is not None and Path(path).parent.name.startswith("lstm-data-")


def _data_error(e: BaseException, path: Any) -> BaseException:
    """``e`` as a :class:`DataError` when it is about the data file ``path``; else ``e``."""
    msg = str(e)
    if path is None or str(path) not in msg or isinstance(e, (FileNotFoundError, DataError)):
        return e
    if not isinstance(e, (ValueError, _lstm.LstmError)):
        return e
    if _ours(path):
        msg = msg.replace(str(path), "the data")
        # the CSV's line 1 is the header: line N is row N - 2 of what was given (rows from 0)
        # unless a cell holds a line break, and the library's "row N" (data rows from 1) is
        # row N - 1
        starts = _record_starts(Path(path))
        labels = _row_labels(Path(path))

        def at(r: int) -> str:
            # a filtered or re-indexed frame's rows by their index labels too (df.loc)
            if labels is not None and 0 <= r < len(labels):
                return f"row {r} (index {labels[r]})"
            return f"row {r}"

        def row(m: "re.Match[str]") -> str:
            n = int(m.group(2))
            if m.group(1) == "row":
                return at(n - 1)
            if starts is not None:
                r = bisect.bisect_right(starts, n) - 1
                return "the header" if r <= 0 else at(r - 1)
            return "the header" if n == 1 else at(n - 2)

        msg = re.sub(r"\b(line|row) (\d+)", row, msg)
        # the library speaks of files; this one is the user's data
        for file_words, data_words in (
            ("the file has no data rows", "the data has no rows"),
            ("a file of several series", "data of several series"),
            ("the file's series", "the data's series"),
            ("the file is empty", "the data is empty"),
        ):
            msg = msg.replace(file_words, data_words)
    return DataError(msg)


def _labels_file(path: Path) -> Path:
    return path.with_name(path.name + ".labels")


def _row_labels(path: Path) -> Optional[List[str]]:
    """The index labels of the DataFrame written to ``path``, one per row, when they are not
    its positions (``_write``); else ``None``."""
    try:
        return _labels_file(path).read_text(encoding="utf-8").split("\n")[:-1]
    except OSError:
        return None


def _record_starts(path: Path) -> Optional[List[int]]:
    """The line (from 1) each record of a CSV file starts on, the header first; ``None`` if
    it is not a CSV file we can read."""
    if path.suffix != ".csv":
        return None
    try:
        with open(path, newline="", encoding="utf-8") as f:
            r = csv.reader(f)
            starts, end = [], 0
            for _ in r:
                starts.append(end + 1)
                end = r.line_num
            return starts
    except (OSError, csv.Error, UnicodeDecodeError):
        return None


def _flat(frame: Any) -> Any:
    """A DataFrame with its named index levels as columns (a time or id set with
    ``set_index`` is a column of the data)."""
    if any(n is not None for n in frame.index.names):
        return frame.reset_index()
    return frame


def _distinct_when_trimmed(labels: Sequence[str], what: str = "labels") -> None:
    """``DataError`` for two labels (or ids) that differ only by blanks around them: the
    library reads them trimmed, so they would silently become one class (or series)."""
    seen: Dict[str, str] = {}
    for l in dict.fromkeys(labels):
        t = l.strip()
        if t in seen and seen[t] != l:
            raise DataError(
                f"the {what} {seen[t]!r} and {l!r} differ only by blanks around them, which "
                f"are not kept: they would be one; strip them or rename one"
            )
        seen.setdefault(t, l)


def _in_order(values: Any, what: str) -> List[Any]:
    """``values`` as a list when they are a sequence in order (a list, a tuple, a 1-D array, a
    Series...): a set or a mapping has no order to match labels or results to (a dict would
    give its keys), and a 2-D array or a DataFrame's several columns are not one value each."""
    if isinstance(values, (set, frozenset, Mapping)):
        raise TypeError(
            f"give the {what} as a sequence in order (a list, a tuple, an array or a Series), "
            f"not a {type(values).__name__}"
        )
    if _is_dataframe(values):
        raise ValueError(
            f"give the {what} as one column (a Series or a list), not a DataFrame of "
            f"{values.shape[1]} columns"
        )
    if isinstance(values, np.ndarray) and values.ndim != 1:
        raise ValueError(f"give the {what} as a 1-D sequence, got an array of shape {values.shape}")
    try:
        return list(values)
    except TypeError:
        raise TypeError(
            f"give the {what} as a list, a pandas Series or a 1-D array, got "
            f"{type(values).__name__}"
        ) from None


def _frame_column(frame: Any, name: Any, setting: str) -> Any:
    """The column ``name`` of a DataFrame, refusing a name several columns share (it would
    select a DataFrame, whose iteration gives column names)."""
    if isinstance(frame.columns, _pandas().MultiIndex):
        raise ValueError(
            "the DataFrame's columns are a MultiIndex; give one level of names "
            "(df.columns = [...] or df.droplevel(...))"
        )
    if int((frame.columns == name).sum()) > 1:
        raise ValueError(f"the DataFrame has several columns named {name!r} ({setting}); rename them")
    return frame[name]


def _distinct_as_text(ids: Sequence[Any]) -> None:
    """``DataError`` for two ids of different types written alike (``1`` and ``'1'``): the
    library reads the ids as text, so they would silently become one series."""
    seen: Dict[str, Any] = {}
    for v in ids:
        key = str(v).strip()
        if key in seen and type(seen[key]) is not type(v):
            raise DataError(
                f"the ids {seen[key]!r} and {v!r} are written alike ({key!r}) and would be one "
                "series; give the id column one type (df[col].astype(str), say)"
            )
        seen.setdefault(key, v)


def _missing(v: Any) -> bool:
    """Whether one value is missing: None, NaN, pandas' NA or NaT."""
    if v is None:
        return True
    if isinstance(v, (float, np.floating)):
        return bool(np.isnan(v))
    pd = _pandas()
    return pd is not None and (v is pd.NA or v is pd.NaT)


def _count(v: Any, name: str, least: int = 0, bits: int = 63) -> int:
    """An integer argument: ``TypeError`` if it is not one, ``ValueError`` if it is below
    ``least`` or does not fit in ``bits`` bits."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__} {v!r}")
    v = int(v)
    if v < least:
        raise ValueError(f"{name} must be at least {least}, got {v}")
    if v >= 2**bits:
        raise ValueError(f"{name} is too large: {v} (at most 2**{bits} - 1)")
    return v


def _text(text: Any, what: str) -> str:
    """The text a text model reads: a string, or a list of strings joined by newlines."""
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        raise TypeError(f"{what} takes str, not bytes: decode it first (text.decode('utf-8'))")
    try:
        items = list(text)
    except TypeError:
        raise TypeError(
            f"{what} takes a str, a pathlib.Path or a list of str, got {type(text).__name__}"
        ) from None
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise TypeError(f"{what}: item {i} of the list is {type(t).__name__} {t!r}, not str")
    return "\n".join(items)


def _builtin(v: Any) -> Any:
    """A numpy scalar as the Python number it holds (settings from a grid search, say)."""
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"a setting must be a number, a string, a bool or a list, got {type(v).__name__}")


def _settings_json(settings: Mapping[str, Any]) -> str:
    """The settings as JSON; ``ValueError`` naming a setting that is NaN or infinite, or an
    integer past 64 bits (JSON would carry it as a float)."""
    for k, v in settings.items():
        if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            if not -(2**63) <= int(v) < 2**64:
                raise ValueError(f"{k} = {v} is out of range (at most 2**64 - 1)")
        try:
            if isinstance(v, (float, np.floating)) and not math.isfinite(float(v)):
                raise ValueError(f"{k} must be a finite number, got {v}")
        except TypeError:
            pass
    return json.dumps(dict(settings), default=_builtin)


def settings(task: str, **overrides: Any) -> Dict[str, Any]:
    """The settings of a job (``"text"``, ``"forecast"`` or ``"classify"``): the binary's
    defaults with ``overrides`` laid over them, checked as ``lstm train`` checks them. A size
    given as ``None`` (see ``get_params``) shows its default here: the rule that may change it
    runs on the data, in ``fit``.

    Raises ``ValueError`` naming an unknown or invalid setting.
    """
    return json.loads(_lstm.check_settings(task, _settings_json(overrides)))


class History(dict):
    """What ``fit`` returns: ``history["loss"]`` (training loss per step),
    ``history["val_loss"]`` (per validation pass), their ``step`` lists, the job's ``notes``
    about its data and why it ``stopped``. A ``dict``, like Keras' ``History.history``.

    A classifier of several models adds ``history["ensemble_val_loss"]`` and
    ``history["ensemble_val_accuracy"]``: the models together (their probabilities averaged)
    on the validation rows, as ``evaluate`` scores the saved model there; ``val_loss`` is the
    first model's alone. ``None`` for one model and the other jobs."""


def _pandas():
    return sys.modules.get("pandas")


def _tabular(x: Any) -> Any:
    """A polars DataFrame or a pyarrow Table as a pandas DataFrame (by their own
    ``to_pandas()``); anything else as it is (a probe, 2026-12-07: a polars frame was "an
    array of shape (2100, 3)")."""
    top = type(x).__module__.split(".")[0]
    if top in ("polars", "pyarrow") and hasattr(x, "to_pandas") and hasattr(x, "columns"):
        return x.to_pandas()
    return x


def _is_dataframe(x: Any) -> bool:
    pd = _pandas()
    return pd is not None and isinstance(x, pd.DataFrame)


def _fmt(v: Any) -> str:
    """One CSV cell: numbers in full precision; NaN, None, pandas' NA and NaT empty; a
    numpy datetime to the second, as the time column reads it."""
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return "" if math.isnan(v) else repr(float(v))
    if isinstance(v, np.datetime64):
        if np.isnat(v):
            return ""
        # a date stays a date (`2024-01-01`, `2024-01`); a time is written to the second
        unit = np.datetime_data(v.dtype)[0]
        if unit in ("Y", "M", "W", "D"):
            return str(np.datetime_as_string(v, unit="D" if unit == "W" else unit))
        return str(np.datetime_as_string(v, unit="s")).replace("T", " ")
    pd = _pandas()
    if pd is not None and (v is pd.NA or v is pd.NaT):
        return ""
    return str(v)


def _write_header(f: Any, names: Sequence[Any], end: str = "\r\n") -> None:
    """A copy's header row, ended by ``end``: a name holding a tab is quoted (all of them
    then), so that the header is not read as tab-separated (csv quotes only commas, quotes and
    line breaks)."""
    tab = any("\t" in str(n) for n in names)
    quoting = csv.QUOTE_ALL if tab else csv.QUOTE_MINIMAL
    csv.writer(f, quoting=quoting, lineterminator=end).writerow([str(n) for n in names])


def _write_columns(path: Path, columns: Mapping[str, Sequence[Any]]) -> None:
    names = list(columns)
    if not names:
        raise ValueError("the data has no columns: give a mapping of column names to values")
    for n in names:
        c = columns[n]
        if isinstance(c, np.ndarray) and c.dtype != object:
            bad = np.iscomplexobj(c)
        else:
            bad = any(isinstance(v, (complex, np.complexfloating)) for v in c)
        if bad:
            raise ValueError(f"column {n!r} holds complex numbers; give real numbers")
    lengths = {len(columns[n]) for n in names}
    if len(lengths) != 1:
        raise ValueError(
            f"the columns have different lengths: "
            + ", ".join(f"{n}: {len(columns[n])}" for n in names)
        )
    with open(path, "w", newline="", encoding="utf-8") as f:
        _write_header(f, names)
        w = csv.writer(f)
        for row in zip(*(columns[n] for n in names)):
            w.writerow([_fmt(v) for v in row])


def _progress(verbose: bool) -> Optional[Callable[..., None]]:
    if not verbose:
        return None

    def show(step, loss, val_loss, fraction, items_per_s):
        if val_loss is not None:
            print(f"step {step}: loss {loss:.4f}, val_loss {val_loss:.4f}", flush=True)

    return show


class _Fitted:
    """A forecaster's last fit: its model, the copy of its data that ``predict()`` continues
    and how that data was given. The copy is removed when the last reference goes: a
    ``predict()`` running in another thread holds it until it is done."""

    def __init__(
        self,
        model: "_lstm.Model",
        path: Path,
        keep: "_DataDir",
        was_frame: bool,
        text_keys: Any,
        key_types: Dict[str, Any],
    ) -> None:
        self.model = model
        self.path = path
        self.keep = keep
        self.was_frame = was_frame
        self.text_keys = text_keys
        self.key_types = key_types


class _DataDir:
    """A temporary directory removed by ``cleanup()`` or with its last reference, silently (a
    ``TemporaryDirectory`` left to the collector, or alive at exit, warns)."""

    def __init__(self) -> None:
        self.name = tempfile.mkdtemp(prefix="lstm-data-")
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.name, True)

    def cleanup(self) -> None:
        self._finalizer()


def _model_files(model: "_lstm.Model") -> Dict[str, bytes]:
    """The files of ``model``'s directory as ``save()`` writes them, by name."""
    with tempfile.TemporaryDirectory(prefix="lstm-pickle-") as d:
        model.save(d)
        return {p.name: p.read_bytes() for p in sorted(Path(d).iterdir()) if p.is_file()}


def _model_from_files(files: Dict[str, bytes]) -> "_lstm.Model":
    """A model read back from ``_model_files``' answer (what a pickle holds). Pickles name
    this function: keep its name and module."""
    with tempfile.TemporaryDirectory(prefix="lstm-pickle-") as d:
        _write_named(Path(d), files, "model")
        return _lstm.Model.load(d)


def _write_named(d: Path, files: Dict[str, bytes], what: str) -> None:
    """Writes a pickle's files into the directory ``d``."""
    for name, content in files.items():
        (d / _file_name(name, what)).write_bytes(content)


def _file_name(name: Any, what: str) -> str:
    """``name`` when it is a file's name, not a path (a pickle is trusted code anyway; this is
    not a way out of its directory)."""
    if not isinstance(name, str) or name in ("", ".", "..") or os.path.basename(name) != name:
        raise ValueError(f"a pickled {what} holds a file named {name!r}, not a file name")
    return name


def _reduce_model(model: "_lstm.Model") -> Any:
    return _model_from_files, (_model_files(model),)


# pickle, copy.deepcopy and joblib take a model as the files of its directory (weights,
# settings, optimizer state and history, as save() writes them): one that is loaded back
# forecasts, generates and classifies as the original does, and saves the same directory
copyreg.pickle(_lstm.Model, _reduce_model)


# The settings a job's rules choose when they are left to it (None, or not given): a text
# model's shape for a long budget (its layers only as a condition), a global forecaster's size
# for large data. As `sized` in src/jobs.rs.
_SIZED: Dict[str, Tuple[str, ...]] = {
    "text": ("layers", "hidden", "dropout", "lr_schedule"),
    "forecast": ("hidden", "dropout", "lr_schedule"),
}


class _Job:
    """What the three jobs share: settings, ``fit`` on a file, ``save``, ``evaluate``."""

    _task = ""

    def __init__(self, **settings: Any) -> None:
        # checked now, so that a misspelt setting fails before any data is read
        _lstm.check_settings(self._task, _settings_json(settings))
        self._settings = dict(settings)
        self._model: Optional[_lstm.Model] = None
        self.history_: Optional[History] = None
        # every attribute a fit sets exists from the start: a copy made while another thread
        # fits (copy.deepcopy iterates the attributes) does not see their number change (a
        # probe, 2026-12-07)
        self._changed: Dict[str, Any] = {}
        self._label_values: Optional[Dict[str, Any]] = None

    @classmethod
    def _from_model(cls, model: "_lstm.Model") -> "_Job":
        job = cls.__new__(cls)
        # fit() on a loaded model trains anew with its settings (scikit-learn's refit; Keras'
        # fit would go on from the weights): those that differ from the defaults, less where
        # its data was (a probe, 2026-12-07: it trained with the defaults, a 2x256 model from
        # a 1x64 one)
        saved = json.loads(model.settings_json)
        defaults = settings(cls._task)
        # and that the job reads: a configuration file may set another job's (a review,
        # 2026-12-07: a classifier saved with `seq_len` 99 could not be refitted or cloned)
        read = set(_lstm.settings_read_by(cls._task))
        # the size it trained at is given, also where it is the default's: a rule that sizes
        # models by their budget or data would otherwise resize the refit (the review,
        # 2026-12-08: a 2x256 given at the default refitted as 2x512)
        sized = _SIZED.get(cls._task, ())
        job._settings = {
            k: v
            for k, v in saved.items()
            if k not in ("data", "val")
            and k in read
            and k in defaults
            and (defaults[k] != v or k in sized)
        }
        if saved.get("forecaster") == "global":
            # which a global forecaster saved before 2026-12-08 may hold, and does not read
            job._settings.pop("val_fraction", None)
        job._model = model
        job.history_ = None
        job._changed = {}
        job._label_values = None
        return job

    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        """Every setting the job reads (the trained model's, once trained or loaded, with those
        changed by ``set_params`` since). Before a fit, a size the job chooses by rule and was
        not given is ``None`` (a text model's ``layers``, ``hidden``, ``dropout`` and
        ``lr_schedule``; a forecaster's ``hidden``, ``dropout`` and ``lr_schedule``), which
        given back leaves it to the job again. ``deep`` is scikit-learn's argument: a model
        holds no other estimator, so it changes nothing."""
        # those the job reads: a configuration file may have set another job's, which the
        # constructor refuses (a review, 2026-12-07)
        read = set(_lstm.settings_read_by(self._task))
        if self._model is not None:
            p = {k: v for k, v in json.loads(self._model.settings_json).items() if k in read}
            if p.get("forecaster") == "global" and "val_fraction" in p:
                # not read by it, and refused given to it: what a build before 2026-12-08
                # saved there is not given back (the second review, 2026-12-08)
                p["val_fraction"] = settings(self._task)["val_fraction"]
            for k in ("data", "val"):
                # a temporary copy of a fit's data is gone (an estimator cloned from this one
                # would name it)
                if _ours(p.get(k)):
                    p[k] = None
            return {**p, **getattr(self, "_changed", {})}
        # the values given as given: scikit-learn's clone() checks that the constructor kept
        # the very objects it passed (a probe, 2026-12-07: it refused every estimator)
        p = {k: v for k, v in settings(self._task, **self._settings).items() if k in read}
        # a size left to the job is None ("chosen by the job"), so that the settings given
        # back to the constructor leave it to the job again (the review, 2026-12-08: given
        # back at the default's value, they kept the small text model of a long budget)
        for k in _SIZED.get(self._task, ()):
            if k in p:
                p[k] = None
        return {**p, **self._settings}

    def __sklearn_is_fitted__(self) -> bool:
        """Whether the estimator holds a model (scikit-learn's ``check_is_fitted``)."""
        return self._model is not None

    def __sklearn_tags__(self) -> Any:
        """What scikit-learn 1.6 and later read about an estimator (``is_classifier``,
        ``is_regressor``, ``get_tags``): neither a classifier nor a regressor, fitted on its
        data alone (no ``y``); the classifier has its own. Without it, those raised
        ``AttributeError`` on a text model or a forecaster."""
        from sklearn.utils import InputTags, Tags, TargetTags

        text = self._task == "text"
        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            input_tags=InputTags(one_d_array=True, two_d_array=not text, string=text),
        )

    def __sklearn_clone__(self) -> "_Job":
        """scikit-learn's ``clone()``: a new, untrained estimator with the settings given to
        the constructor and ``set_params`` (a loaded model's: those it was trained with),
        not those a fit here resolved from its data (a season, a context, a scaling, which
        ``get_params`` shows): the clone's fit resolves them from its own data, as a fit of
        this estimator would (the review, 2026-12-07: a clone of a forecaster fitted on
        monthly data kept season 12 for hourly data)."""
        return type(self)(**copy.deepcopy(self._settings))

    def set_params(self, **params: Any) -> "_Job":
        """Changes settings (scikit-learn's ``set_params``), checked now; the next ``fit``
        trains with them. Returns the object."""
        new = {**self._settings, **params}
        _lstm.check_settings(self._task, _settings_json(new))
        self._settings = new
        # shown by get_params() over the trained model's until the next fit
        self._changed = {**getattr(self, "_changed", {}), **params}
        return self

    @property
    def model(self) -> "_lstm.Model":
        """The trained model; raises ``ValueError`` before ``fit`` or ``load``."""
        if self._model is None:
            raise ValueError(
                f"this {type(self).__name__} is not trained yet; call fit() or lstm.load()"
            )
        return self._model

    @property
    def num_params(self) -> int:
        """The number of parameters of the trained model."""
        return self.model.num_params

    def _fit_file(
        self,
        data: Optional[Path],
        extra: Dict[str, Any],
        out: Optional[PathLike],
        verbose: bool,
        label_values: Optional[str] = None,
        produced: Optional[List[Any]] = None,
    ) -> History:
        """Trains a model on the file ``data`` into this object. Given ``produced`` (a list),
        it is given the model this call made instead (also when it was interrupted and kept
        one), for the caller to set with what goes with it in one statement (another thread's
        fit may run meanwhile: a review, 2026-12-07, saw a new model beside the old labels)."""
        s = dict(self._settings)
        # a budget given to fit() replaces the constructor's (or a loaded model's), not joins it
        # (the second review, 2026-12-07: a loaded model's 300 steps beside epochs=1 trained its
        # further models 300 steps)
        budget = ("steps", "epochs", "minutes")
        if any(extra.get(k) is not None for k in budget):
            for k in budget:
                s.pop(k, None)
        s.update(extra)
        if data is not None:
            s["data"] = str(data)
        own_dir = out is None
        # an empty path is not the current directory (a probe, 2026-12-07: it trained there)
        out_dir = Path(tempfile.mkdtemp(prefix="lstm-model-")) if own_dir else _dir_path(out, "fit")
        try:
            r = _lstm.Model.train(
                self._task, _settings_json(s), str(out_dir), _progress(verbose), label_values
            )
        except (ValueError, _lstm.LstmError) as e:
            raise _data_error(e, data) from None
        except KeyboardInterrupt as stop:
            # the model so far stays in this object, as Keras' fit() keeps the weights of an
            # interrupted run (the temporary directory goes; out= keeps its checkpoint too)
            try:
                kept = _lstm.Model.load(str(out_dir))
                if produced is None:
                    self._model, self._changed, self.history_ = kept, {}, None
                else:
                    produced.append(kept)
            except Exception:
                if not own_dir:
                    # nothing saved yet: the interruption as the library words it
                    raise stop from None
                raise KeyboardInterrupt(
                    "training interrupted before a checkpoint was written; nothing was kept"
                ) from None
            if not own_dir:
                raise KeyboardInterrupt(f"{stop} and kept in this object") from None
            raise KeyboardInterrupt(
                "training interrupted; the model so far is kept in this object "
                "(save() writes it; fit(out=...) keeps the checkpoints of a run)"
            ) from None
        finally:
            if own_dir:
                shutil.rmtree(out_dir, ignore_errors=True)
        # a note about a temporary file written from the caller's data names "the data", as
        # its errors do
        notes = [
            n.replace(str(data), "the data") if data is not None and _ours(data) else n
            for n in r.notes
        ]
        if verbose:
            for note in notes:
                print(note, flush=True)
        for note in notes:
            # the job's warnings (about the data, or a run that diverged with finite losses:
            # the model is kept all the same), as the binary prints them on stderr
            if note.startswith("warning: "):
                warnings.warn(note[len("warning: "):], RuntimeWarning, stacklevel=3)
        h = History(
            loss=[l for _, l in r.train_loss],
            step=[s for s, _ in r.train_loss],
            val_loss=[l for _, l in r.val_loss],
            val_step=[s for s, _ in r.val_loss],
            notes=notes,
            stopped=r.stopped,
            ensemble_val_loss=r.ensemble_val[0] if r.ensemble_val else None,
            ensemble_val_accuracy=r.ensemble_val[1] if r.ensemble_val else None,
        )
        if verbose and r.ensemble_val:
            print(
                f"the models averaged: val_loss {r.ensemble_val[0]:.4f}, "
                f"accuracy {100 * r.ensemble_val[1]:.2f}% (val_loss above: the first model's)",
                flush=True,
            )
        if produced is None:
            self._model, self._changed, self.history_ = r.model, {}, h
        else:
            produced.append(r.model)
        return h

    def save(self, dir: PathLike) -> None:
        """Writes the model directory (``config.json``, ``model.safetensors``, ...) that the
        binary's commands and :func:`load` read, with ``loss.svg``, the curves of the model's
        training (none for an imported model). A model already in ``dir`` is replaced; a
        directory of other files is refused. Another thread's save into ``dir`` is waited for,
        up to 10 s; a run training into it, or another process' save, is refused at once."""
        self.model.save(str(_dir_path(dir, "save")))

    def _evaluate_file(self, path: PathLike, **options: Any) -> Dict[str, Any]:
        try:
            report = json.loads(self.model.evaluate(str(path), **options))
        except (ValueError, _lstm.LstmError) as e:
            raise _data_error(e, path) from None
        if _ours(path) and isinstance(report, dict) and "data" in report:
            # the temporary file the library read is gone: name what was given
            report["data"] = "the data"
        return report

    def __repr__(self) -> str:
        if self._model is None:
            # those that differ from the defaults, as scikit-learn shows an estimator (a clone
            # is given every setting)
            defaults = settings(self._task)
            args = ", ".join(
                f"{k}={v!r}"
                for k, v in self._settings.items()
                if k not in defaults or not _same(defaults[k], v)
            )
            return f"{type(self).__name__}({args})"
        return repr(self._model)


class TextModel(_Job):
    """A character (or word) language model: ``lstm train text``.

    >>> m = lstm.TextModel(hidden=128, layers=1, steps=300)
    >>> m.fit("the text to learn ...")            # or a Path, or a list of strings
    >>> print(m.generate("ROMEO:", length=200, seed=1))
    """

    _task = "text"

    def fit(
        self,
        text: Union[str, "os.PathLike[str]", Sequence[str], None] = None,
        *,
        out: Optional[PathLike] = None,
        verbose: bool = False,
        **settings: Any,
    ) -> History:
        """Trains on ``text``: a string (the text itself), a ``pathlib.Path`` (a text file), a
        list of strings (joined by newlines) or ``None`` (the bundled tinyshakespeare, as
        ``lstm train``). ``settings`` override the constructor's for this run; ``out`` keeps
        the checkpoints in that directory. Returns the loss history."""
        data = settings.get("data")
        if isinstance(data, str) and ("\n" in data or len(data) > 4096):
            # a probe, 2026-12-07: fit(data=<the text>) was read as a path, and the error
            # quoted all 200 KB of it
            raise TypeError(
                "data= takes the path of a text file (as `lstm train --data`); give a text held "
                "in a string as fit(text)"
            )
        if text is None:
            return self._fit_file(None, settings, out, verbose)
        if isinstance(text, os.PathLike):
            return self._fit_file(Path(text), settings, out, verbose)
        text = _text(text, "fit()")
        with tempfile.TemporaryDirectory(prefix="lstm-data-") as d:
            p = Path(d) / "text.txt"
            p.write_text(text, encoding="utf-8")
            return self._fit_file(p, settings, out, verbose)

    @overload
    def generate(
        self,
        prime: str = ...,
        length: int = ...,
        temperature: float = ...,
        top_k: int = ...,
        seed: Optional[int] = ...,
        *,
        stream: Literal[False] = ...,
        bf16: bool = ...,
    ) -> str: ...

    @overload
    def generate(
        self,
        prime: str = ...,
        length: int = ...,
        temperature: float = ...,
        top_k: int = ...,
        seed: Optional[int] = ...,
        *,
        stream: Literal[True],
        bf16: bool = ...,
    ) -> Iterator[str]: ...

    @overload
    def generate(
        self,
        prime: str = ...,
        length: int = ...,
        temperature: float = ...,
        top_k: int = ...,
        seed: Optional[int] = ...,
        *,
        stream: bool,
        bf16: bool = ...,
    ) -> Union[str, Iterator[str]]: ...

    def generate(
        self,
        prime: str = "\n",
        length: int = 500,
        temperature: float = 0.8,
        top_k: int = 0,
        seed: Optional[int] = None,
        *,
        stream: bool = False,
        bf16: bool = False,
    ) -> Union[str, Iterator[str]]:
        """Continues ``prime`` with ``length`` characters (or words) sampled at
        ``temperature`` among the ``top_k`` likeliest (0: all); returns the generated text
        without the prime, the same text as ``lstm generate --prime ... --length ... --seed
        ...`` (the same defaults: temperature 0.8, seed ``None`` meaning the binary's 0).
        With ``stream=True``, an iterator that yields the text piece by piece as it is
        produced."""
        if not isinstance(prime, str):
            raise TypeError(f"prime must be a str, got {type(prime).__name__}")
        length = _count(length, "length")
        top_k = _count(top_k, "top_k")
        seed = 0 if seed is None else _count(seed, "seed", bits=64)
        if isinstance(temperature, (bool, np.bool_)) or not isinstance(
            temperature, (int, float, np.integer, np.floating)
        ):
            raise TypeError(f"temperature must be a number, got {type(temperature).__name__}")
        temperature = float(temperature)
        # a string is no flag ("no" was read as true: a probe, 2026-12-07)
        for name, flag in [("stream", stream), ("bf16", bf16)]:
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        if stream:
            return self.model.generate_stream(prime, length, temperature, top_k, seed, bf16)
        return self.model.generate(prime, length, temperature, top_k, seed, bf16)

    def evaluate(
        self, text: Union[str, "os.PathLike[str]", Sequence[str]], *,
        tail: Optional[float] = None,
        stream: bool = False,
    ) -> Dict[str, Any]:
        """Scores the model on ``text`` (a string, a list of strings joined by newlines as
        ``fit`` joins them, or a ``pathlib.Path``) as ``lstm eval``: cross-entropy in nats per
        character, and bits. ``tail`` scores only that final fraction; ``stream`` carries the
        state across the whole text."""
        if tail is not None and (
            isinstance(tail, (bool, np.bool_))
            or not isinstance(tail, (int, float, np.integer, np.floating))
        ):
            raise TypeError(f"tail must be a number in (0, 1], got {type(tail).__name__}")
        if isinstance(text, os.PathLike):
            return self._evaluate_file(text, tail=tail, stream=stream)
        text = _text(text, "evaluate()")
        with tempfile.TemporaryDirectory(prefix="lstm-data-") as d:
            p = Path(d) / "text.txt"
            p.write_text(text, encoding="utf-8")
            return self._evaluate_file(p, tail=tail, stream=stream)


SeriesData = Union["os.PathLike[str]", np.ndarray, Sequence[float], Mapping[str, Sequence[Any]], Any]


class Forecaster(_Job):
    """A forecaster of one or many series: ``lstm train forecast``.

    ``fit`` takes a pandas DataFrame in long format (one row per series and time; an unnamed
    DatetimeIndex or PeriodIndex is the time column ``time``, a named index is the column of
    its name, and an integer index that is not the rows' numbers 0, 1, ... is the time of one
    series), a pandas Series, a mapping of column names to sequences (pandas Series in it are
    paired by their index), a 1-D array (one series; None, NaN and masked values missing)
    or the path of a CSV file; a frame with a column of times needs ``time_column`` (its rows
    are not read in the frame's order), and only the columns the model reads are passed on;
    ``column`` names the target, ``id_column`` the series, ``time_column`` the time (a date,
    datetime or integer index), ``known_columns`` covariates known in advance. The forecast
    distribution is Student-t unless ``distribution`` says ``"gaussian"`` or, for counts,
    ``"negative_binomial"``.

    >>> f = lstm.Forecaster(horizon=48, season=24)
    >>> f.fit(df, column="value", id_column="series", time_column="t")
    >>> fc = f.predict(quantiles=[0.1, 0.9])    # the next 48 steps of every series
    """

    _task = "forecast"

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._fitted: Optional[_Fitted] = None

    @classmethod
    def _from_model(cls, model: "_lstm.Model") -> "Forecaster":
        f = super()._from_model(model)
        f._fitted = None
        return f  # type: ignore[return-value]

    def __getstate__(self) -> Dict[str, Any]:
        # the copy of the last fit's data that predict() continues goes into the pickle (a
        # file given by its path stays a path, as in this object)
        state = self.__dict__.copy()
        fitted = state.pop("_fitted", None)
        if fitted is not None:
            keep = Path(fitted.keep.name)
            ours = fitted.path.parent == keep
            state["_fitted"] = {
                "model": fitted.model,
                "path": fitted.path.name if ours else str(fitted.path),
                "files": (
                    {p.name: p.read_bytes() for p in sorted(keep.iterdir()) if p.is_file()}
                    if ours
                    else None
                ),
                "was_frame": fitted.was_frame,
                "text_keys": fitted.text_keys,
                "key_types": fitted.key_types,
            }
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        state = dict(state)
        fitted = state.pop("_fitted", None)
        self.__dict__.update(state)
        self._fitted = None
        if fitted is not None:
            keep = _DataDir()
            files = fitted["files"]
            if files is None:
                path = Path(fitted["path"])
            else:
                try:
                    _file_name(fitted["path"], "Forecaster")
                    _write_named(Path(keep.name), files, "Forecaster")
                except BaseException:
                    keep.cleanup()
                    raise
                path = Path(keep.name) / fitted["path"]
            if fitted["was_frame"]:
                # predict() answers with a DataFrame, as before the pickle, in a process that
                # has not imported pandas yet (`_pandas()` looks only at imported modules)
                try:
                    import pandas  # noqa: F401
                except ImportError:
                    pass
            self._fitted = _Fitted(
                fitted["model"],
                path,
                keep,
                fitted["was_frame"],
                fitted["text_keys"],
                fitted["key_types"],
            )

    def _used(self) -> List[Any]:
        """The columns a fitted model reads: target, id, time, known covariates."""
        p = self.get_params()
        return [
            self._target(),
            p.get("id_column"),
            p.get("date_column"),
            *(p.get("known_columns") or []),
            *(p.get("columns") or []),
        ]

    def _write(
        self, data: SeriesData, d: Path, column: Optional[str], used: Optional[Sequence[Any]] = None
    ) -> Path:
        if isinstance(data, (str, os.PathLike)):
            return Path(data)
        p = d / "series.csv"
        if _is_dataframe(data):
            pd = _pandas()
            # the rows' labels as the user knows them, for an error's rows (before an index
            # that holds the times becomes a column)
            index = data.index
            if isinstance(data.columns, pd.MultiIndex):
                raise ValueError(
                    "the DataFrame's columns are a MultiIndex; give one level of names "
                    "(df.columns = [...] or df.droplevel(...))"
                )
            # times with a zone in the index: the advice converts the index, not a column the
            # frame does not have
            for i in range(data.index.nlevels):
                level = data.index.get_level_values(i)
                if isinstance(level.dtype, pd.DatetimeTZDtype):
                    at = "" if data.index.nlevels == 1 else f", level={i}"
                    raise DataError(
                        f"the DataFrame's index holds times with a time zone ({level.dtype.tz}); "
                        "a DataFrame's times are read without one: give "
                        f"df.tz_convert('UTC'{at}).tz_localize(None{at}) (UTC has no repeated "
                        "or skipped hours; a local zone repeats an hour when daylight saving "
                        "time ends); for a model trained on times written with `Z`, give the "
                        "times as such text: df.reset_index() and "
                        "df[c].dt.tz_convert('UTC').dt.strftime('%Y-%m-%dT%H:%M:%SZ')"
                    )
            # a named index (a time or id set with set_index) is a column of the data
            if any(n is not None for n in data.index.names):
                if any(n in data.columns for n in data.index.names if n is not None):
                    raise DataError(
                        f"the DataFrame's index {list(data.index.names)} is named as one of its "
                        "columns; rename one (df.rename_axis(...)) or drop the index "
                        "(df.reset_index(drop=True))"
                    )
                data = data.reset_index()
            dup = data.columns[data.columns.duplicated()]
            if len(dup):
                raise DataError(f"the DataFrame has two columns named {dup[0]!r}; rename one")
            # only the columns the model reads: another (a note with a line break, a list) is
            # none of the library's business; all of them when one is missing, so that its
            # error lists the frame's columns
            names = [str(c) for c in (used or []) if c is not None]
            # the time only: whole-number float ids stay floats (`_key_types` restores them)
            keys = [str(c) for c in list(used or [])[2:3] if c is not None]
            if names and all(n in map(str, data.columns) for n in names):
                data = data[[c for c in data.columns if str(c) in names]]
            data = data.copy()
            for c in data.columns:
                col = data[c]
                # times of a frequency the library reads from its first day: quarters, weeks
                if isinstance(col.dtype, pd.PeriodDtype) and col.dtype.freq.freqstr[:1] in ("Q", "W"):
                    data[c] = col.dt.to_timestamp(how="start").dt.strftime("%Y-%m-%d")
                # whole numbers held as floats (an integer column that had a NaN): integers
                elif (
                    pd.api.types.is_float_dtype(col.dtype)
                    and str(c) in keys
                    and col.notna().all()
                    and (col == col.round()).all()
                    and col.abs().max() < 2**53
                ):
                    data[c] = col.astype("int64")
            for c in data.columns:
                if isinstance(data[c].dtype, pd.DatetimeTZDtype):
                    raise DataError(
                        f"column {c!r} holds times with a time zone ({data[c].dtype.tz}); "
                        "a DataFrame's times are read without one: give "
                        f"df[{c!r}].dt.tz_convert('UTC').dt.tz_localize(None) (UTC has no "
                        "repeated or skipped hours; a local zone repeats an hour when daylight "
                        "saving time ends); for a model trained on times written with `Z`, give "
                        f"them as such text: df[{c!r}].dt.tz_convert('UTC')"
                        ".dt.strftime('%Y-%m-%dT%H:%M:%SZ')"
                    )
            with open(p, "w", newline="", encoding="utf-8") as f:
                # (pandas ends its rows with a line feed alone)
                _write_header(f, list(data.columns), end="\n")
            data.to_csv(p, index=False, header=False, mode="a")
            if not (
                isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
            ):
                # kept for an error's row numbers (`_data_error`): positions, and these labels
                _labels_file(p).write_text(
                    "".join(str(v).replace("\n", "\\n") + "\n" for v in index),
                    encoding="utf-8",
                )
            return p
        if isinstance(data, Mapping):
            _write_columns(p, {str(k): list(v) for k, v in data.items()})
            return p
        if np.ma.isMaskedArray(data):
            # masked values are missing
            data = np.ma.filled(np.ma.asarray(data, dtype=np.float64), np.nan)
        arr = np.asarray(data)
        if np.iscomplexobj(arr):
            raise ValueError("the series holds complex numbers; give real numbers")
        if arr.ndim == 1 and arr.dtype == object:
            # None (and pandas' NA) in a list of numbers is a missing value, as in a DataFrame
            try:
                arr = np.array([np.nan if _fmt(v) == "" else float(v) for v in arr], dtype=np.float64)
            except (TypeError, ValueError):
                pass
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.number):
            raise ValueError(
                "give a pandas DataFrame, a mapping of column names to values, a 1-D numeric "
                f"array (one series) or a pathlib.Path; got an array of shape {arr.shape} and "
                f"dtype {arr.dtype}"
            )
        # (a column named 0 is one: a review, 2026-12-07)
        _write_columns(p, {"value" if column is None else column: arr.astype(np.float64)})
        return p

    def fit(
        self,
        data: SeriesData,
        *,
        column: Optional[str] = None,
        id_column: Optional[str] = None,
        time_column: Optional[str] = None,
        known_columns: Optional[Sequence[str]] = None,
        out: Optional[PathLike] = None,
        verbose: bool = False,
        **settings: Any,
    ) -> History:
        """Trains one model over every series of ``data`` (see the class); returns the loss
        history. Without ``column``, a 1-D array's values are the column ``value``."""
        extra = dict(settings)
        col = column
        data, col, time_column = _as_frame(data, col, time_column, id_column)
        _times_unused(data, time_column, [col, id_column, known_columns])
        if col is None and not isinstance(data, (str, os.PathLike, Mapping)) and not _is_dataframe(data):
            col = "value"
        named = extra.get("columns") or self._settings.get("columns")
        if col is None and not named and (isinstance(data, Mapping) or _is_dataframe(data)):
            names = list(data.columns) if _is_dataframe(data) else list(data)
            raise ValueError(f"give column=: the name of the target column (columns: {names})")
        # names as the CSV header writes them (a DataFrame of an array has columns 0, 1, ...)
        if col is not None:
            extra["columns"] = [str(col)]
        if id_column is not None:
            extra["id_column"] = str(id_column)
        if time_column is not None:
            extra["date_column"] = str(time_column)
        if known_columns is not None and not isinstance(known_columns, str):
            known_columns = [str(c) for c in known_columns]
        if known_columns is not None:
            # one name given as a string is one column, not its characters
            extra["known_columns"] = (
                [known_columns] if isinstance(known_columns, str) else list(known_columns)
            )
        if id_column is not None and _is_dataframe(data):
            frame = _flat(data)
            if id_column in frame.columns:
                ids = list(frame[id_column].dropna().unique())
                _distinct_when_trimmed([v for v in ids if isinstance(v, str)], "ids")
                _distinct_as_text(ids)
        # the training file is kept: predict() without data continues it
        keep = _DataDir()
        used = [
            col,
            id_column,
            time_column,
            *(extra.get("known_columns") or []),
            *(named or []),
        ]
        try:
            path = self._write(data, Path(keep.name), col, used)
        except BaseException:
            keep.cleanup()
            raise
        # the model this fit makes: another thread's fit may replace self.model meanwhile (a
        # probe, 2026-12-07: one fit's model was kept with the other's data)
        produced: List[Any] = []
        try:
            h = self._fit_file(path, extra, out, verbose, produced=produced)
        except KeyboardInterrupt:
            if produced:
                # the model so far was kept: predict() continues this fit's data
                self._keep_data(produced[-1], None, path, keep, data, id_column, time_column)
            else:
                keep.cleanup()
            raise
        except BaseException:
            # not left to the garbage collector: a notebook keeps the exception, and with it
            # this directory (a copy of the data) for as long as it shows the traceback
            keep.cleanup()
            raise
        self._keep_data(produced[-1], h, path, keep, data, id_column, time_column)
        return h

    def _keep_data(
        self,
        model: Any,
        history: Optional[History],
        path: Path,
        keep: Any,
        data: Any,
        id_column: Any,
        time_column: Any,
    ) -> None:
        # one statement, the model this fit made with its data and history: a predict() in
        # another thread sees the previous fit or this one, and the model is the one whose
        # data is kept (a review, 2026-12-07: another thread's fit had set the model between)
        fitted = _Fitted(
            model,
            # a file given by a relative path stays the same file after os.chdir() (and in a
            # pickle)
            path.absolute(),
            keep,
            _is_dataframe(data),
            _text_columns(data, [id_column, time_column]),
            _key_types(data, id_column, time_column),
        )
        self._model, self._fitted, self._changed, self.history_ = model, fitted, {}, history

    def predict(
        self,
        data: Optional[SeriesData] = None,
        steps: Optional[int] = None,
        quantiles: Optional[Sequence[float]] = None,
    ) -> Any:
        """Forecasts ``steps`` steps (default: the horizon) past the last value of every
        series of ``data`` (default: the data of the last ``fit``), with one column
        ``q<level>`` per quantile level (global forecasters; default 0.025 and 0.975, the
        95% interval; ``[]`` for none). The columns are those ``lstm forecast`` writes: id
        and time under their input names (and, from a DataFrame, in its dtypes: datetimes,
        periods, float or categorical ids), the median forecast under the target's name.
        Returns a pandas DataFrame when ``data`` is one (or was one in ``fit``), else a dict
        of numpy arrays."""
        # without data: one fit's model and data, held for this call (a fit in another thread
        # replaces them; a probe, 2026-12-07: the data was removed under a running predict)
        fitted = self._fitted if data is None else None
        m = fitted.model if fitted is not None else self.model
        if quantiles is None:
            quantiles = [0.025, 0.975] if m.is_global else []
        if isinstance(quantiles, (int, float, np.integer, np.floating)):
            raise TypeError(f"quantiles must be a list of levels, got {quantiles!r} (a list: [{quantiles}])")
        quantiles = list(quantiles)
        for q in quantiles:
            if isinstance(q, (bool, np.bool_)) or not isinstance(q, (int, float, np.integer, np.floating)):
                raise TypeError(f"a quantile level must be a number in (0, 1), got {q!r}")
        # a float32 level keeps its short spelling (0.3, not 0.30000001192092896), which
        # names its column
        levels = [float(str(q)) if isinstance(q, np.floating) else float(q) for q in quantiles]
        if steps is not None:
            steps = _count(steps, "steps", 1)
        params = json.loads(m.settings_json)
        if data is not None:
            data, _, _ = _as_frame(
                data, self._target(), params.get("date_column"), params.get("id_column")
            )
        if data is None and fitted is None:
            raise ValueError("give the series to continue: this model was loaded, not fitted here")
        as_frame = _is_dataframe(data) if fitted is None else fitted.was_frame
        with tempfile.TemporaryDirectory(prefix="lstm-data-") as d:
            if fitted is not None:
                path = fitted.path
            else:
                path = self._write(data, Path(d), self._target(), self._used())
            try:
                text = m.forecast(str(path), steps, levels)
            except (ValueError, _lstm.LstmError) as e:
                raise _data_error(e, path) from None
        header = next(csv.reader(io.StringIO(text)), [])
        keys = {params.get("id_column"), params.get("date_column")}
        # without a time column, the steps' column (`t`, or `time`... when the id is `t`)
        if m.is_global:
            at = 1 if params.get("id_column") else 0
            keys.update(header[at : at + 1])
        else:
            keys.add("step")
        texts = (
            fitted.text_keys
            if fitted is not None
            else _text_columns(data, [params.get("id_column")])
        )
        out = _parse_forecast(text, as_frame, keys, texts)
        types = (
            fitted.key_types
            if fitted is not None
            else _key_types(data, params.get("id_column"), params.get("date_column"))
        )
        return _restore_types(out, types) if as_frame else out

    def _target(self) -> Optional[str]:
        cols = self.get_params().get("columns") or []
        return cols[0] if cols else None

    def evaluate(
        self,
        data: SeriesData,
        *,
        windows: Optional[int] = None,
        holdout: Optional[int] = None,
        per_series: bool = False,
        forecasts: bool = False,
    ) -> Dict[str, Any]:
        """Backtests the model on ``data`` as ``lstm eval`` does: for a global forecaster,
        ``windows`` rolling origins (default 1) scored with sMAPE, MASE, MAPE, RMSE, the
        weighted quantile loss, the 95% interval's coverage and MSIS, beside seasonal naive;
        for a window forecaster, the last ``holdout`` rows. The averages are the report's;
        with ``per_series=True`` (a global forecaster) its ``"per_series"`` holds each
        series' scores in each window, as ``lstm eval --per-series`` writes them: the id,
        ``window`` (1 the earliest), ``start`` (the window's first time), ``observed``, the
        model's ``smape``, ``mase``, ``mape``, ``rmse``, ``quantile_loss``, ``coverage_95``,
        ``msis``, and ``seasonal_naive_smape``, ``seasonal_naive_mase`` (NaN where a measure
        does not exist); with ``forecasts=True`` its ``"forecasts"`` holds each window's
        forecasts beside the actuals, as NeuralForecast's ``cross_validation`` gives them: the
        id and time columns, ``cutoff`` (the last time before the window), the actual under
        the target's name, ``median`` and the quantiles ``q0.025`` to ``q0.975``. Each is a
        pandas DataFrame when ``data`` is one, else a dict of numpy arrays."""
        if windows is not None:
            windows = _count(windows, "windows", 1)
        if holdout is not None:
            holdout = _count(holdout, "holdout", 1)
        for name, flag in [("per_series", per_series), ("forecasts", forecasts)]:
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        params = self.get_params()
        data, _, _ = _as_frame(
            data, self._target(), params.get("date_column"), params.get("id_column")
        )
        as_frame = _is_dataframe(data)
        texts = _text_columns(data, [params.get("id_column")])
        with tempfile.TemporaryDirectory(prefix="lstm-data-") as d:
            path = self._write(data, Path(d), self._target(), self._used())
            options: Dict[str, Any] = {"windows": windows, "holdout": holdout}
            if per_series:
                options["per_series"] = True
            if forecasts:
                options["forecasts"] = True
            report = self._evaluate_file(path, **options)
        table = report.pop("per_series_csv", None)
        if table is not None:
            id_column = params.get("id_column") or "series"
            out = _parse_forecast(
                table, as_frame, {id_column, "window", "start", "observed"}, texts
            )
            if as_frame:
                types = _key_types(data, params.get("id_column"), params.get("date_column"))
                if "id" in types:
                    out = _restore_types(out, {"id": types["id"]})
                if "time" in types:
                    out = _restore_types(out, {"time": ("start", types["time"][1])})
            report["per_series"] = out
        table = report.pop("forecasts_csv", None)
        if table is not None:
            header = next(csv.reader(io.StringIO(table)), [])
            # the id (when there is one) and the time, then the cutoff
            at = 1 if params.get("id_column") else 0
            time_name = header[at] if len(header) > at else None
            out = _parse_forecast(
                table, as_frame, {params.get("id_column"), time_name, "cutoff"}, texts
            )
            if as_frame:
                types = _key_types(data, params.get("id_column"), params.get("date_column"))
                out = _restore_types(out, types)
                if "time" in types:
                    out = _restore_types(out, {"time": ("cutoff", types["time"][1])})
            report["forecasts"] = out
        return report


def _as_frame(
    data: Any,
    column: Optional[str],
    time_column: Optional[str],
    id_column: Optional[str] = None,
) -> Any:
    """``(data, column, time_column)`` with a pandas Series made a DataFrame (its values the
    target ``column``, default ``value``) and an unnamed DatetimeIndex or PeriodIndex made the
    time column (``time_column``, default ``time``), as statsmodels and Darts read them."""
    if data is None:
        raise TypeError(
            "data is None: give a pandas DataFrame or Series, a mapping of column names to "
            "values, a 1-D array or the path of a CSV file"
        )
    data = _tabular(data)
    if column is not None and not isinstance(column, (str, int, np.integer)):
        raise TypeError(
            f"column takes one name (the target), got {column!r}; a forecaster forecasts one "
            "column, others can be known_columns"
        )
    pd = _pandas()
    if pd is None:
        return data, column, time_column
    if type(data).__module__.startswith("pandas.core.groupby") or hasattr(data, "ngroups"):
        raise TypeError(
            "a pandas GroupBy is not data: give the DataFrame itself in long format (one row "
            "per series and time) with id_column= naming the series"
        )
    if isinstance(data, Mapping) and any(isinstance(v, pd.Series) for v in data.values()):
        # pandas Series are paired by their index, as a DataFrame pairs them, not by position
        frame = pd.DataFrame(dict(data))
        lengths = {len(v) for v in data.values()}
        if lengths != {len(frame)}:
            raise ValueError(
                "the pandas Series of the mapping have different indexes: paired by index, "
                "some rows would be missing from some of them; give them one index, or give a "
                "DataFrame"
            )
        data = frame
    if isinstance(data, (pd.Series, pd.DataFrame)) and isinstance(data.index, pd.MultiIndex) \
            and all(n is None for n in data.index.names):
        # a named level is a column (an unnamed one beside it `level_N`); with none named,
        # the levels were dropped and the series merged into one (a probe, 2026-12-07)
        raise DataError(
            f"the rows' index has {data.index.nlevels} levels and no names: name them "
            "(df.index.names = ['series', 't']) and give id_column= and time_column=, or make "
            "them columns with reset_index()"
        )
    if isinstance(data, pd.Series):
        column = column or (data.name if isinstance(data.name, str) else None) or "value"
        data = data.to_frame(name=column)
    if isinstance(data, pd.DataFrame) and isinstance(
        data.index, (pd.DatetimeIndex, pd.PeriodIndex)
    ):
        if data.index.name is None:
            if time_column is None:
                time_column = next(
                    n for n in ("time", "ds", "time_", "time__") if n not in data.columns
                )
            if time_column not in data.columns:
                data = data.rename_axis(time_column)
        elif time_column is None:
            # a named index of times is the time column too (it became a column of numbered
            # rows, the dates lost)
            time_column = data.index.name
    elif (
        isinstance(data, pd.DataFrame)
        and data.index.nlevels == 1
        and pd.api.types.is_integer_dtype(data.index.dtype)
        and data.index.is_unique
        and data.index.is_monotonic_increasing
        # never under a name the user gave for a column (a typo stays an error), only the
        # names this rule gives (a forecast of a model it trained)
        and (time_column is None or (time_column in _INDEX_TIMES and time_column not in data.columns))
        # a column of times is the time: `_times_unused` asks for it
        and not _time_columns(data)
    ):
        # an integer index is the time as a date index is: named (set_index("t")), or one of
        # one series that is not the rows' numbers 0, 1, ... (a slice: 100, 101, ...); its
        # forecast continues it (it gave row counts, 41, 42, ..., under the name `t`)
        default = isinstance(data.index, pd.RangeIndex) and data.index.start == 0 and data.index.step == 1
        if data.index.name is not None:
            if time_column is None and data.index.name not in data.columns:
                time_column = data.index.name
        elif not default and id_column is None:
            time_column = time_column or next(n for n in _INDEX_TIMES if n not in data.columns)
            data = data.rename_axis(time_column)
    return data, column, time_column


# The names an integer index takes as the time column (`_as_frame`).
_INDEX_TIMES = ("time", "t_", "time_")


# A date, month or date and time as text, in the forms the library reads as times (an
# integer or a bare year is an index, not a date).
_DATE_TEXT = re.compile(
    r"\s*\d{4}-\d{2}(-\d{2}([ Tt]\d{2}:\d{2}(:\d{2}(\.0+)?)?([Zz]|[+-]\d{2}:\d{2})?)?)?\s*\Z"
)


def _time_columns(frame: Any) -> List[Any]:
    """The columns of a DataFrame (with its named index levels) that hold times."""
    pd = _pandas()
    out = []
    frame = _flat(frame)
    for i, c in enumerate(frame.columns):
        # by position: two columns of one name are refused later, by name
        col = frame.iloc[:, i]
        dated = pd.api.types.is_datetime64_any_dtype(col.dtype) or isinstance(
            col.dtype, pd.PeriodDtype
        )
        if not dated and (col.dtype == object or isinstance(col.dtype, pd.StringDtype)):
            present = col.dropna()[:100]
            dated = len(present) > 0 and (
                all(isinstance(v, (datetime.date, pd.Timestamp, pd.Period)) for v in present)
                # dates as text, as `pd.read_csv` leaves them (`1949-01`, `2020-01-01 00:00`):
                # the times the library reads (a review, 2026-12-07: dropped without a word)
                or all(isinstance(v, str) and _DATE_TEXT.match(v) for v in present)
            )
        if dated:
            out.append(c)
    return out


def _times_unused(data: Any, time_column: Optional[str], used: Sequence[Any] = ()) -> None:
    """``DataError`` for a DataFrame with a column of times that ``time_column`` does not name:
    the rows would be read in the frame's order and numbered 1, 2, ..., the dates lost. The
    columns in ``used`` (the target, the ids, known columns: a name or a list of names) have
    their own roles (ids like ``2021-03`` are ids)."""
    if time_column is not None or not _is_dataframe(data):
        return
    roles = set()
    for u in used:
        if u is None:
            continue
        if isinstance(u, (str, bytes)) or not hasattr(u, "__iter__"):
            roles.add(u)
        else:
            # a list, a pandas Index, an array of names
            roles.update(u)
    for c in [c for c in _time_columns(data) if c not in roles][:1]:
        raise DataError(
            f"column {c!r} holds times, but time_column= is not given: the rows would be "
            f"read in the frame's order and numbered 1, 2, ...; give time_column={c!r} (and "
            "id_column= for several series)"
        )


def _key_types(data: Any, id_column: Optional[str], time_column: Optional[str]) -> Dict[str, Any]:
    """The dtypes of a DataFrame's id and time columns that a forecast's text does not keep
    (datetimes, periods, floats, categories), with the ids' values by their text."""
    out: Dict[str, Any] = {}
    if not _is_dataframe(data):
        return out
    pd = _pandas()
    frame = _flat(data)
    types = pd.api.types
    if time_column is not None and time_column in frame.columns:
        t = frame[time_column].dtype
        if types.is_datetime64_dtype(t) or isinstance(t, pd.PeriodDtype):
            out["time"] = (time_column, t)
        elif types.is_integer_dtype(t) and not types.is_bool_dtype(t) and str(t) != "int64":
            # int32, uint16, pandas' Int64...: the forecast's times come back in it when they fit
            out["time"] = (time_column, t)
        elif t == object:
            # Python dates (datetime.date, not datetime), as df["day"] = ts.dt.date makes
            present = frame[time_column].dropna()
            if len(present) and all(
                isinstance(v, datetime.date) and not isinstance(v, datetime.datetime)
                for v in present
            ):
                out["time"] = (time_column, "date")
    if id_column is not None and id_column in frame.columns:
        ids = frame[id_column]
        present = ids.dropna()
        ints = ids.dtype == object and len(present) > 0 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
            for v in present
        )
        # the library reads ids without the blanks around them: ' 7 ' comes back as '7'
        blanks = any(isinstance(v, str) and v != v.strip() for v in present)
        if (
            isinstance(ids.dtype, pd.CategoricalDtype)
            # pandas' own dtypes: nullable Int64, string, arrow-backed ids
            or isinstance(ids.dtype, pd.api.extensions.ExtensionDtype)
            or types.is_float_dtype(ids.dtype)
            or types.is_bool_dtype(ids.dtype)
            # int32, uint16...: int64 is what the text comes back as
            or (types.is_integer_dtype(ids.dtype) and str(ids.dtype) != "int64")
            or ints
            or blanks
        ):
            values = {}
            for v in ids.dropna().unique():
                values[str(v).strip() if blanks else str(v)] = v
            out["id"] = (id_column, ids.dtype, values)
    return out


def _restore_types(frame: Any, types: Dict[str, Any]) -> Any:
    """A forecast DataFrame with its id and time columns in the input's dtypes (``_key_types``)
    where every value converts; else left as written."""
    pd = _pandas()
    if "time" in types:
        name, dtype = types["time"]
        if name in frame.columns:
            try:
                if not isinstance(dtype, str) and pd.api.types.is_integer_dtype(dtype):
                    col = frame[name]
                    info = np.iinfo(getattr(dtype, "numpy_dtype", dtype))
                    if (
                        pd.api.types.is_integer_dtype(col.dtype)
                        and len(col)
                        and info.min <= col.min()
                        and col.max() <= info.max
                    ):
                        frame[name] = col.astype(dtype)
                elif isinstance(dtype, str) and dtype == "date":
                    frame[name] = pd.to_datetime(frame[name].astype(str)).dt.date
                elif isinstance(dtype, pd.PeriodDtype):
                    frame[name] = pd.PeriodIndex(frame[name].astype(str), freq=dtype.freq)
                else:
                    frame[name] = pd.to_datetime(frame[name].astype(str)).astype(dtype)
            except (ValueError, TypeError):
                pass
    if "id" in types:
        name, dtype, values = types["id"]
        if name in frame.columns:
            written = frame[name].astype(str)
            if written.isin(list(values)).all():
                frame[name] = pd.Series(
                    [values[v] for v in written], index=frame.index
                ).astype(dtype)
    return frame


def _text_columns(data: Any, names: Sequence[Optional[str]]) -> set:
    """Which of the columns ``names`` of ``data`` (a DataFrame or a mapping) hold strings."""
    out = set()
    for n in names:
        if n is None:
            continue
        try:
            if _is_dataframe(data):
                frame = _flat(data)
                types = _pandas().api.types
                if n in frame.columns and not (
                    types.is_numeric_dtype(frame[n]) or types.is_datetime64_any_dtype(frame[n])
                ):
                    out.add(n)
            elif isinstance(data, Mapping) and n in data:
                if any(isinstance(v, str) for v in data[n]):
                    out.add(n)
        except TypeError:
            pass
    return out


def _parse_forecast(text: str, as_frame: bool, keys: Any = (), texts: Any = ()) -> Any:
    """The forecast CSV as columns: the key columns (id, time) as integers when they all are
    and the input's were not text (``texts``: those given as strings, kept as written:
    ids "007" and "7" are two series), else as written; the others (the forecast and its
    quantiles) as floats."""
    # csv reads quoted cells whole (an id with a comma or a line break)
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    cols: Dict[str, Any] = {}
    for i, name in enumerate(header):
        vals = [r[i] if i < len(r) else "" for r in body]
        if name in texts:
            cols[name] = np.array(vals, dtype=object)
            continue
        if name in keys:
            try:
                ints = [int(v) for v in vals]
                if all(-(2**63) <= v < 2**63 for v in ints):
                    cols[name] = np.array(ints, dtype=np.int64)
                    continue
                if all(0 <= v < 2**64 for v in ints):
                    cols[name] = np.array(ints, dtype=np.uint64)
                    continue
                # past 64 bits: Python ints, never floats (which would merge ids)
                cols[name] = np.array(ints, dtype=object)
                continue
            except ValueError:
                pass
        if name in keys:
            # a key column is never read as floats: ids 9.2e18 and 9.2e18 + 1 stay apart
            cols[name] = np.array(vals, dtype=object)
            continue
        try:
            cols[name] = np.array([float(v) if v != "" else np.nan for v in vals])
        except ValueError:
            cols[name] = np.array(vals, dtype=object)
    if as_frame and _pandas() is not None:
        return _pandas().DataFrame(cols)
    return cols


TextsData = Union[Sequence[str], "os.PathLike[str]", Any]


class Classifier(_Job):
    """A text classifier: ``lstm train classify``.

    >>> c = lstm.Classifier(epochs=3)
    >>> c.fit(texts, labels)            # lists of strings, or a DataFrame with both columns
    >>> c.predict(["a fine film"]), c.predict_proba(["a fine film"]), c.classes_

    By default it trains ``members=10`` models from seeds derived from ``seed`` and averages
    their class probabilities (``members=1``: one model), as ``lstm train classify`` does.
    Labels are read as text, as the binary reads them from a file; integer and boolean labels
    come back as such from ``classes_`` and ``predict`` (as scikit-learn's classifiers give
    them), from this object, its pickle and the directory ``save`` writes (which records
    them, and which ``lstm.load`` reads back); other labels, and those of a model trained by
    the binary, as strings (labels ``0`` and ``1`` in a file given to ``lstm train classify``
    come back as ``"0"`` and ``"1"``).
    """

    _task = "classify"
    # what scikit-learn before 1.6 reads to tell a classifier (stratified folds in
    # cross_val_score and GridSearchCV)
    _estimator_type = "classifier"

    def __sklearn_tags__(self) -> Any:
        """What scikit-learn 1.6 and later read to tell a classifier: a list of texts in, one
        label per text (imported when scikit-learn asks, which it then is)."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True, one_d_labels=True),
            classifier_tags=ClassifierTags(),
            input_tags=InputTags(one_d_array=True, two_d_array=False, string=True),
        )

    def _write(
        self, texts: TextsData, labels: Optional[Sequence[Any]], d: Path
    ) -> Path:
        texts = _tabular(texts)
        if isinstance(texts, (str, os.PathLike)):
            if labels is not None:
                raise ValueError("give labels with lists of texts, not with a file")
            return Path(texts)
        s = self.get_params()
        tc, lc = s["text_column"], s["label_column"]
        p = d / "texts.csv"
        if _is_dataframe(texts):
            if labels is not None:
                raise ValueError("give labels as a column of the DataFrame, not separately")
            missing = [c for c in (tc, lc) if c not in texts.columns]
            if missing:
                raise ValueError(
                    f"the DataFrame has no column {missing[0]!r} (columns: {list(texts.columns)}); "
                    "name them with text_column= and label_column="
                )
            for c, setting in ((tc, "text_column"), (lc, "label_column")):
                _frame_column(texts, c, setting)
            for c in (tc, lc):
                gone = texts[c].isna().to_numpy()
                if gone.any():
                    i = int(np.argmax(gone))
                    what = "text" if c == tc else "label"
                    raise DataError(
                        f"the data row {i}: the {what} is missing ({texts[c].iloc[i]!r}); drop "
                        f"the row or give it a {what}"
                    )
            _distinct_when_trimmed([str(l) for l in texts[lc].unique()])
            texts.to_csv(p, index=False, columns=[tc, lc])
            return p
        if labels is None:
            raise ValueError("give the labels: fit(texts, labels)")
        labels = _in_order(labels, "labels")
        texts = _in_order(texts, "texts")
        # a missing label or text is refused, as in a DataFrame, not read as "None" or "nan"
        for what, values in (("label", labels), ("text", texts)):
            for i, v in enumerate(values):
                if _missing(v):
                    raise DataError(
                        f"the data row {i}: the {what} is missing ({v!r}); drop the row or "
                        f"give it a {what}"
                    )
                if isinstance(v, (bytes, bytearray)):
                    raise TypeError(
                        f"the data row {i}: the {what} is bytes ({v!r}); decode it first"
                    )
                if what == "text" and not isinstance(v, str):
                    raise TypeError(f"the data row {i}: the text is {type(v).__name__} {v!r}, not str")
        labels = [str(l) for l in labels]
        _distinct_when_trimmed(labels)
        if len(labels) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        _write_columns(p, {tc: texts, lc: labels})
        return p

    def fit(
        self,
        texts: TextsData,
        labels: Optional[Sequence[Any]] = None,
        *,
        out: Optional[PathLike] = None,
        verbose: bool = False,
        **settings: Any,
    ) -> History:
        """Trains on ``texts`` and ``labels`` (lists), a DataFrame with the ``text_column``
        and ``label_column`` settings' columns (``text``, ``label``), or the path of a CSV/TSV
        file; returns the loss history."""
        # the columns named here are the model's from now on (predict() on a frame reads
        # them), once the fit succeeds (a probe, 2026-12-07: a failed fit kept them)
        before, model = dict(self._settings), self._model
        for k in ("text_column", "label_column"):
            if k in settings:
                self._settings[k] = settings.pop(k)
        values = _label_values(texts, labels, self.get_params()["label_column"])
        # recorded with the model, so that a directory saved from it gives them back so
        kind = _values_kind(values)
        # the model this fit makes, set again with its label values in one statement: a fit in
        # another thread may have replaced the model meanwhile (a review, 2026-12-07: one
        # fit's model with the other's integer labels)
        produced: List[Any] = []
        try:
            with tempfile.TemporaryDirectory(prefix="lstm-data-") as d:
                path = self._write(texts, labels, Path(d))
                h = self._fit_file(path, settings, out, verbose, kind, produced)
        except BaseException:
            # (an interrupted fit keeps the model trained so far, and so its columns)
            if produced:
                self._model, self._label_values, self._changed, self.history_ = (
                    produced[-1], values, {}, None
                )
            elif self._model is model:
                self._settings = before
            raise
        self._model, self._label_values, self._changed, self.history_ = produced[-1], values, {}, h
        return h

    def save(self, dir: PathLike) -> None:
        """Writes the model directory, as :meth:`_Job.save` (integer or boolean labels are
        recorded in it, for an object unpickled from before they were)."""
        model = self.model
        values = getattr(self, "_label_values", None)
        kind = None
        if model.label_values is None and values and all(l in values for l in model.labels):
            kind = _values_kind(values)
        model.save(str(_dir_path(dir, "save")), kind)

    def _values(self, model: Optional["_lstm.Model"] = None) -> Optional[Dict[str, Any]]:
        """The labels of ``model`` (this object's) by their text, when they were integers or
        booleans: those given to this object's fit, or those the model records (a model
        saved from such a fit)."""
        model = model or self.model
        labels = model.labels
        values = getattr(self, "_label_values", None)
        if values and all(l in values for l in labels):
            return values
        kind = model.label_values
        if kind == "integer":
            return {l: int(l) for l in labels}
        if kind == "boolean":
            return {l: l == "True" for l in labels}
        return None

    @property
    def classes_(self) -> np.ndarray:
        """The labels, in the order of ``predict_proba``'s columns (an array, as
        scikit-learn's: integers or booleans when the fit was given such, else strings)."""
        # one model read once: a fit in another thread may replace it meanwhile
        model = self.model
        values = self._values(model)
        labels = list(model.labels)
        return np.array([values[l] for l in labels] if values else labels)

    def _texts(self, texts: Any) -> List[str]:
        texts = _tabular(texts)
        if isinstance(texts, (str, bytes, bytearray)):
            raise ValueError("give a list of texts, not one string")
        if _is_dataframe(texts):
            tc = self.get_params()["text_column"]
            if tc not in texts.columns:
                raise ValueError(
                    f"the DataFrame has no column {tc!r} (columns: {list(texts.columns)}); "
                    "give the texts as a list or a Series, or name the column with "
                    "text_column= when fitting"
                )
            texts = _frame_column(texts, tc, "text_column")
        items = _in_order(texts, "texts")
        for i, t in enumerate(items):
            if isinstance(t, str):
                continue
            if _missing(t):
                raise DataError(f"text {i} is missing ({t!r}); drop it or give a text")
            if isinstance(t, (bytes, bytearray)):
                raise TypeError(f"text {i} is bytes ({t!r}); decode it first")
            # a list or a number is not a text: its str() would be classified
            raise TypeError(f"text {i} is {type(t).__name__} {t!r}, not str")
        return items

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """The likeliest label of each text (a list of strings, a pandas Series, or a
        DataFrame with the ``text_column``): an array of ``classes_``' type, as
        scikit-learn's ``predict`` returns."""
        # the labels and their values from one model: a fit in another thread may replace it
        # meanwhile (a probe, 2026-12-07: a KeyError while a refit changed the labels)
        model = self.model
        labels, _, _ = model.classify(self._texts(texts))
        classes = list(model.labels)
        values = self._values(model)
        at = {l: i for i, l in enumerate(classes)}
        # indexing the classes keeps their dtype, with no texts too (np.array([]) is float)
        return np.array([values[l] for l in classes] if values else classes)[
            np.array([at[l] for l in labels], dtype=np.intp)
        ]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's probability of each label, ``(len(texts), len(classes_))`` float32."""
        texts = self._texts(texts)
        model = self.model
        _, probs, k = model.classify(texts)
        # no texts: no rows, still one column per label (as scikit-learn's)
        return probs.reshape(len(texts), k if texts else len(model.labels))

    def score(self, texts: TextsData, labels: Optional[Sequence[Any]] = None) -> float:
        """The accuracy on ``texts`` and ``labels`` (as ``fit`` takes them; labels compared
        as text), a fraction in [0, 1]: scikit-learn's ``score``, which ``cross_val_score``
        and ``GridSearchCV`` maximise by default. A label the model was not trained on is a
        :class:`DataError`, as in ``evaluate``."""
        return float(self.evaluate(texts, labels)["accuracy"])

    def evaluate(
        self, texts: TextsData, labels: Optional[Sequence[Any]] = None, *,
        tail: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Accuracy and confusion matrix on ``texts`` and ``labels`` (as ``fit`` takes them),
        as ``lstm eval --json`` reports them (``confusion`` is the whole matrix up to 100
        classes, else ``None``; ``top_confusions`` lists the 20 most frequent errors as
        ``{"true", "predicted", "count"}``; ``per_class`` each label's ``precision``,
        ``recall``, ``f1`` and ``support`` as scikit-learn's ``classification_report``,
        ``macro_f1`` their mean, ``majority`` the accuracy of always predicting the most
        frequent label; ``seen_by_training`` how many rows hold texts the model's training
        read, or ``None``); ``tail`` scores only that final fraction."""
        with tempfile.TemporaryDirectory(prefix="lstm-data-") as d:
            path = self._write(texts, labels, Path(d))
            return self._evaluate_file(path, tail=tail)


def _same(a: Any, b: Any) -> bool:
    """Whether two settings' values are equal (``==`` that never raises: arrays, odd types)."""
    numbers = (int, float)
    try:
        if type(a) in numbers and type(b) in numbers:
            return bool(a == b)
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _label_values(texts: Any, labels: Any, label_column: Any) -> Optional[Dict[str, Any]]:
    """Integer or boolean labels by the text the library reads them as (``str``, as a
    DataFrame's ``to_csv`` writes them); ``None`` for other labels (and for a file). Every
    label is looked at, not the distinct ones: ``1``, ``True`` and ``1.0`` are one key to
    Python (a review, 2026-12-07: labels mixing them were taken for integers, and the fit
    refused its own labels)."""
    texts = _tabular(texts)
    try:
        if _is_dataframe(texts):
            values = texts[label_column].dropna()
        elif labels is None or isinstance(texts, (str, os.PathLike)):
            return None
        else:
            values = _in_order(labels, "labels")
    except Exception:
        # what _write refuses, with its message
        return None
    if len(values) == 0:
        return None
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return {str(bool(v)): bool(v) for v in values}
    # written as str(v): the same text as str(int(v)) for an int, not for a subclass that
    # prints itself otherwise
    if all(
        isinstance(v, (int, np.integer))
        and not isinstance(v, (bool, np.bool_))
        and str(v) == str(int(v))
        for v in values
    ):
        return {str(int(v)): int(v) for v in values}
    return None


def _values_kind(values: Optional[Dict[str, Any]]) -> Optional[str]:
    """What :func:`_label_values`' values are, as the library records it (``label_values``):
    ``"boolean"``, ``"integer"``, or ``None`` for none."""
    if not values:
        return None
    return "boolean" if isinstance(next(iter(values.values())), bool) else "integer"


def _dir_path(dir: Any, what: str) -> Path:
    """A model directory's path: a str or path-like naming something (not ``None``, not
    empty, which would be the current directory)."""
    if not isinstance(dir, (str, os.PathLike)):
        raise TypeError(f"{what}() takes a directory path (str or os.PathLike), got {type(dir).__name__}")
    p = os.fspath(dir)
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    if p.strip() == "":
        raise ValueError(f"{what}() needs a directory path, got an empty one")
    return Path(p)


def load(dir: PathLike) -> Union[TextModel, Forecaster, Classifier]:
    """Loads a model directory written by ``lstm train`` or ``save()``: a
    :class:`TextModel`, :class:`Forecaster` or :class:`Classifier` by its job. Its ``fit()``
    trains a new model, from new weights, with the loaded model's settings as ``get_params()``
    gives them, those its training resolved included (the scaling ``auto`` chose, a budget or
    size set by the data's size): pass any to change it. Raises ``FileNotFoundError`` for a missing directory,
    ``lstm.LstmError`` for a damaged one."""
    m = _lstm.Model.load(str(_dir_path(dir, "load")))
    cls = {"text": TextModel, "forecast": Forecaster, "classify": Classifier}[m.task]
    return cls._from_model(m)
