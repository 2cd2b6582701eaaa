"""botocore's data, loaded lighter: the endpoint table cut to the services the adapters call
(S3, SQS, and STS for credentials), and the service models without their documentation text.

Every botocore session loads its legacy endpoint table (``botocore/data/endpoints.json``:
every region of every AWS service, some 1.2 MB) whole and keeps it, about 6.8 MiB of a web
worker, to look up the one service a client is for. :data:`CUT_TABLE` is that table with
every partition and its regions as botocore ships them but only the services in
:data:`SERVICES`; :class:`LightLoader`, the adapters' sessions' data loader, gives it to
botocore in place of the whole one.

The table only gives a client its region and partition metadata: the endpoint URL itself
comes from the service's endpoint rule set (DESIGN §6), as with the whole table, because
the cut table is given as botocore's own (``is_builtin_path``). A region botocore adds
later resolves by its partition's defaults until the table is cut again from a newer
botocore, which :func:`write_cut_table` does::

    .venv/bin/python -c "from advanced_notes.adapters.storage import botodata; botodata.write_cut_table()"

botocore also reads each service model (S3's ``service-2.json`` and its endpoint rule set)
into ordered dictionaries with every shape's and operation's documentation, megabytes of a
web worker for S3, though a client never shows it: docstrings are built only when
``help()`` asks. :class:`ModelFileLoader` reads the same files into plain dictionaries
(ordered too, since Python 3.7) and empties every ``documentation`` string (the keys stay:
botocore reads some of them by key); docs/benchmarks.md has what it saves.
"""

from __future__ import annotations

import gzip
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from botocore.loaders import JSONFileLoader, Loader

#: The services whose entries the cut table keeps: what the adapters' clients are for,
#: and STS, which botocore's credential chain calls for assumed roles and web identities.
SERVICES = ("s3", "sqs", "sts")
#: The cut table, packaged beside this module.
CUT_TABLE = Path(__file__).with_name("endpoints.json")
_TABLE = "endpoints"


def cut(table: dict[str, Any]) -> dict[str, Any]:
    """The endpoint table ``table`` (botocore's format) with only the :data:`SERVICES` of each partition."""
    return {
        **table,
        "partitions": [
            {**partition, "services": {s: e for s, e in partition["services"].items() if s in SERVICES}}
            for partition in table["partitions"]
        ],
    }


@cache
def _cut_table() -> dict[str, Any]:
    # Shared by every session of the process (the S3 and SQS adapters'); botocore only reads it.
    table: dict[str, Any] = json.loads(CUT_TABLE.read_text(encoding="utf-8"))
    return table


def _documentation_emptied(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: "" if key == "documentation" else value for key, value in pairs}


class ModelFileLoader(JSONFileLoader):
    """botocore's JSON data file loader, reading plain dictionaries with ``documentation`` emptied.

    Reads what botocore's own reads (``NAME.json``, else ``NAME.json.gz``).
    """

    def load_file(self, file_path: str) -> Any:
        """The data of ``file_path`` + ``.json`` or ``.json.gz``, None when neither exists."""
        for path, opener in ((file_path + ".json", open), (file_path + ".json.gz", gzip.open)):
            if os.path.isfile(path):
                with opener(path, "rb") as f:
                    return json.loads(f.read().decode("utf-8"), object_pairs_hook=_documentation_emptied)
        return None


class LightLoader(Loader):
    """botocore's data loader, giving the cut endpoint table where it would give its own whole
    one, and reading every other data file through :class:`ModelFileLoader`.

    Args:
        data_path: ``AWS_DATA_PATH`` (folders separated by ``os.pathsep``), as botocore's
            ``create_loader`` takes it; None for the default search paths only.

    An endpoint table an operator put in a folder searched before botocore's own
    (``~/.aws/models``, ``AWS_DATA_PATH``) is loaded as botocore would load it.
    """

    def __init__(self, data_path: str | None = None):
        extra = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)] if data_path else None
        super().__init__(extra_search_paths=extra, file_loader=ModelFileLoader())

    def load_data_with_path(self, name: str) -> tuple[Any, str]:
        """What botocore's loader returns for ``name``; the cut table for botocore's own endpoint table."""
        if name == _TABLE and self._builtin_table_comes_first():
            return _cut_table(), str(CUT_TABLE)
        found: tuple[Any, str] = super().load_data_with_path(name)
        return found

    def is_builtin_path(self, path: str) -> bool:
        """True for botocore's own data and for the cut table (keeps botocore's rule-set resolution)."""
        return path == str(CUT_TABLE) or bool(super().is_builtin_path(path))

    def _builtin_table_comes_first(self) -> bool:
        for folder in self.search_paths:
            candidate = os.path.join(folder, _TABLE)
            if self.file_loader.exists(candidate):
                return bool(super().is_builtin_path(candidate))
        return False


def write_cut_table() -> None:
    """Write :data:`CUT_TABLE` from the installed botocore's table."""
    whole = Loader().load_data(_TABLE)
    CUT_TABLE.write_text(json.dumps(cut(whole), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {CUT_TABLE} ({CUT_TABLE.stat().st_size} bytes) from botocore's table")
