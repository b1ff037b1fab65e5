"""Shell completion as the README documents it (click's ``_XREGISTRY_COMPLETE``), through the
installed ``xregistry`` script: the commands load lazily, completion still sees them all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

XREGISTRY = Path(sys.executable).with_name("xregistry")


def _complete(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(XREGISTRY)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bash_completion_script_and_answers() -> None:
    script = _complete({"_XREGISTRY_COMPLETE": "bash_source"})
    assert script.returncode == 0, script.stderr
    assert "complete -o nosort -F _xregistry_completion xregistry" in script.stdout
    answer = _complete(
        {"_XREGISTRY_COMPLETE": "bash_complete", "COMP_WORDS": "xregistry t", "COMP_CWORD": "1"}
    )
    assert answer.stdout.split() == ["plain,tag", "plain,tags", "plain,tree", "plain,trust"]
    options = _complete(
        {
            "_XREGISTRY_COMPLETE": "bash_complete",
            "COMP_WORDS": "xregistry digest --pl",
            "COMP_CWORD": "2",
        }
    )
    assert options.stdout.split() == ["plain,--platform"]
