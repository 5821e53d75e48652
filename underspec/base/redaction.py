"""Credentials out of everything printed or recorded: URL passwords and this environment's
credential variables become ***. Pure string work, used by the tracking layer and the CLIs."""
from __future__ import annotations

import os
import re

# scheme://user:password@host -> scheme://user:***@host
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^/@\s:]*):(?P<pw>[^/@\s]*)@")
SECRET_VARS = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "PGPASSWORD", "AWS_SECRET_ACCESS_KEY",
               "AZURE_STORAGE_ACCESS_KEY", "DATABRICKS_TOKEN")


def redact(text) -> str:
    """text with the password of every URL in it replaced by ***, and the values of the
    credential variables set in this environment removed (values shorter than 4 characters are
    left: replacing them would garble ordinary text)."""
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(text))
    for var in SECRET_VARS:
        if os.environ.get(var) and len(os.environ[var]) >= 4:
            out = out.replace(os.environ[var], "***")
    return out
