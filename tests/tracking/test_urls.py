"""A ``--storage`` or ``--tracking-uri`` that cannot be opened is refused at once, as bad input.

Each refusal is one line naming the option, status 2, no password shown, nothing created, within
seconds. The commands run in this process through ``main()``, the ``dropout-lab`` entry point (an
interpreter per command would spend seconds importing torch, MLflow and Optuna).
"""

from __future__ import annotations

from pathlib import Path
import sys
import time

import pytest

from framework.errors import SpecError
from framework.tracking import Locations
from tests.conftest import TINY_STUDY
from tests.conftest import write_study
from tests.tuning.test_workers import MARIADB
from tests.tuning.test_workers import POSTGRES
from tests.tuning.test_workers import reachable


PASSWORD = "S3cret-pw"
WRONG_PASSWORD = MARIADB.replace("root@", f"root:{PASSWORD}@")
"""MariaDB's root has no password here: any password is a wrong one."""
BAD_DATABASE_URLS = {
    "unknown-scheme": f"foo://me:{PASSWORD}@x",
    "unparsable": f"postgresql://me:{PASSWORD}@:99999/",
    "closed-port": f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test",
    "wrong-password": WRONG_PASSWORD,
    "unknown-database": "postgresql://postgres@127.0.0.1:5432/no_such_db_xyz",
    "unknown-host": "postgresql://postgres@no-such-host.invalid/test",
}
CLOSED_SERVER = f"http://user:{PASSWORD}@127.0.0.1:1"
"""An MLflow tracking server URL where nothing listens."""


def skip_unless_meaningful(case: str) -> None:
    """Skip a case whose URL would fail for another reason than the one it stands for."""
    if case == "unknown-database" and (reason := reachable(POSTGRES)):
        pytest.skip(reason)
    if case == "wrong-password":
        if reason := reachable(MARIADB):
            pytest.skip(reason)
        if reachable(WRONG_PASSWORD) is None:
            pytest.skip("MariaDB here accepts root with any password: no wrong password to try")


def dropout_lab(argv: list[str], monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str]) -> tuple[int, str, float]:
    """Exit status, everything printed, and seconds taken by ``dropout-lab ARGV``."""
    from framework.cli.app import main

    monkeypatch.setattr(sys, "argv", ["dropout-lab", *argv])
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # Installs a redacting log record factory for the rest of the process: not this test's
    # subject (the error line is redacted where it is printed), and not for the other tests.
    monkeypatch.setattr("framework.tracking.redact.redact_library_output", lambda: None)
    started = time.monotonic()
    with pytest.raises(SystemExit) as stop:
        main()
    seconds = time.monotonic() - started
    out, err = capsys.readouterr()
    assert out == "", "a refused command prints nothing else"
    return stop.value.code, err, seconds


def assert_refused(code: int, err: str, seconds: float, option: str, folder: Path) -> None:
    assert code == 2, err
    [line] = err.splitlines()
    assert line.startswith(f"error: {option}: "), line
    assert PASSWORD not in err
    assert seconds < 10, f"refused after {seconds:.1f} s"
    assert sorted(p.name for p in folder.iterdir()) == ["study.yaml"], "nothing created"


@pytest.mark.parametrize("option", ["--storage", "--tracking-uri"])
@pytest.mark.parametrize("case", list(BAD_DATABASE_URLS))
def test_a_database_url_that_cannot_be_opened_is_refused_before_anything_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    option: str, case: str,
) -> None:
    skip_unless_meaningful(case)
    study = write_study(tmp_path, TINY_STUDY.format(name="refused"))
    monkeypatch.chdir(tmp_path)  # anything made in the working folder would show too
    code, err, seconds = dropout_lab(
        ["run", str(study), "--home", str(tmp_path / "home"), option, BAD_DATABASE_URLS[case]],
        monkeypatch, capsys)
    assert_refused(code, err, seconds, option, tmp_path)


@pytest.mark.parametrize("command", [["run"], ["worker"], ["confirm"], ["report"], ["compare"],
                                     ["depth"], ["ui"]])
def test_every_command_refuses_a_tracking_server_that_does_not_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="refused"))
    monkeypatch.chdir(tmp_path)
    code, err, seconds = dropout_lab(
        [*command, str(study), "--home", str(tmp_path / "home"), "--tracking-uri", CLOSED_SERVER],
        monkeypatch, capsys)
    assert_refused(code, err, seconds, "--tracking-uri", tmp_path)
    assert "MLflow tracking server http://user:***@127.0.0.1:1 does not answer" in err
    assert "Connection refused" in err


@pytest.mark.parametrize(("option", "url"), [
    ("--storage", "sqlite:///{file}/optuna.db"),
    ("--tracking-uri", "sqlite:///{file}/mlflow.db"),
    ("--tracking-uri", "{file}/runs"),
    ("--tracking-uri", "file://{file}/runs"),
])
def test_a_local_store_under_a_file_is_refused_without_making_it(
    tmp_path: Path, option: str, url: str,
) -> None:
    file = tmp_path / "a-file"
    file.write_text("")
    keyword = "storage" if option == "--storage" else "tracking_uri"
    with pytest.raises(SpecError, match="a-file is a file") as error:
        Locations.resolve(tmp_path / "home", **{keyword: url.format(file=file)})
    assert error.value.key == option
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_database_servers_that_answer_pass_the_probe(tmp_path: Path) -> None:
    for url in (POSTGRES, MARIADB):
        if reason := reachable(url):
            pytest.skip(reason)
    locations = Locations.resolve(tmp_path / "home", storage=POSTGRES, tracking_uri=MARIADB)
    assert (locations.storage, locations.tracking_uri) == (POSTGRES, MARIADB)
    assert not (tmp_path / "home").exists(), "the probe creates nothing"
