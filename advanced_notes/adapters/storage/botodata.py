"""botocore's data files, loaded lighter: plain dicts, and the endpoint table cut to our services.

Every botocore session loads its data files (service models, endpoint rule sets, the
endpoint table) once and keeps them. Two things make them cost a web worker more than
they need to, and :class:`LightLoader`, the adapters' sessions' data loader, removes both:

- botocore parses its JSON into ``OrderedDict`` objects, which Python's own dicts (ordered
  too) hold in about two thirds of the memory: S3's model and rule set take some 1.4 MiB
  less. :class:`PlainJSONFileLoader` parses them so.
- the legacy endpoint table (``botocore/data/endpoints.json``: every region of every AWS
  service, some 1.2 MB) takes about 6.8 MiB, to look up the one service a client is for.
  :data:`CUT_TABLE` is that table with every partition and its regions as botocore ships
  them but only the services in :data:`SERVICES`.

The table only gives a client its region and partition metadata: the endpoint URL itself
comes from the service's endpoint rule set (DESIGN §6), as with the whole table, because
the cut table is given as botocore's own (``is_builtin_path``). A region botocore adds
later resolves by its partition's defaults until the table is cut again from a newer
botocore, which :func:`write_cut_table` does::

    .venv/bin/python -c "from advanced_notes.adapters.storage import botodata; botodata.write_cut_table()"
"""

from __future__ import annotations

import gzip
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from botocore.loaders import Loader

#: The services whose entries the cut table keeps: what the adapters' clients are for,
#: and STS, which botocore's credential chain calls for assumed roles and web identities.
SERVICES = ("s3", "sqs", "sts")
#: The cut table, packaged beside this module.
CUT_TABLE = Path(__file__).with_name("endpoints.json")
_TABLE = "endpoints"
#: The file suffixes botocore's data come in, as its own file loader reads them.
_SUFFIXES = (".json", ".json.gz")


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


class PlainJSONFileLoader:
    """botocore's file loader interface (``exists``, ``load_file``), parsing into plain dicts."""

    def exists(self, file_path: str) -> bool:
        """True when ``file_path`` plus ``.json`` or ``.json.gz`` is a file."""
        return any(os.path.isfile(file_path + suffix) for suffix in _SUFFIXES)

    def load_file(self, file_path: str) -> Any:
        """The parsed JSON of ``file_path`` plus ``.json`` or ``.json.gz`` (the first found), or None."""
        for suffix in _SUFFIXES:
            path = file_path + suffix
            if os.path.isfile(path):
                payload = gzip.decompress(Path(path).read_bytes()) if suffix == ".json.gz" else Path(path).read_bytes()
                return json.loads(payload.decode("utf-8"))
        return None


class LightLoader(Loader):
    """botocore's data loader with :class:`PlainJSONFileLoader`, giving the cut endpoint table
    where it would give its own whole one.

    Args:
        data_path: ``AWS_DATA_PATH`` (folders separated by ``os.pathsep``), as botocore's
            ``create_loader`` takes it; None for the default search paths only.

    An endpoint table an operator put in a folder searched before botocore's own
    (``~/.aws/models``, ``AWS_DATA_PATH``) is loaded as botocore would load it.
    """

    def __init__(self, data_path: str | None = None):
        extra = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)] if data_path else None
        super().__init__(extra_search_paths=extra, file_loader=PlainJSONFileLoader())

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
