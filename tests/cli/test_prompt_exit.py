"""``dropout-lab`` ends its process without the interpreter's teardown, and loses nothing."""

from pathlib import Path
import subprocess
import sys
import textwrap

from tests.conftest import ROOT
from tests.conftest import invoke


# The program's entry point, after an exit function and a thread that the interpreter would
# have waited for: both must still finish, and the output must arrive.
DRIVER = textwrap.dedent("""
    import atexit, sys, threading, time
    from pathlib import Path
    from framework.cli.app import entry
    out = Path(sys.argv[1])
    atexit.register(lambda: (out / "atexit").write_text("ran"))
    threading.Thread(target=lambda: (time.sleep(0.5), (out / "thread").write_text("ran"))).start()
    sys.argv = ["dropout-lab", *sys.argv[2:]]
    entry()
""")


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def test_a_command_ends_with_its_output_exit_functions_and_threads(tiny_study: Path,
                                                                   tmp_path: Path) -> None:
    done = run(tmp_path, "validate", str(tiny_study))
    assert done.returncode == 0, done.stderr
    assert done.stdout == invoke("validate", str(tiny_study)).stdout, "output was lost"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "ran"


def test_bad_input_still_exits_2_with_its_message(tiny_study: Path, tmp_path: Path) -> None:
    done = run(tmp_path, "validate", str(tiny_study), "train.max_steps=0")
    assert done.returncode == 2
    assert "train.max_steps" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "atexit").read_text() == "ran"


def test_the_module_entry_point_is_the_program(tmp_path: Path) -> None:
    assert "entry()" in (ROOT / "framework" / "cli" / "__main__.py").read_text()
    done = subprocess.run([sys.executable, "-m", "framework.cli", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "validate" in done.stdout


def test_an_idle_thread_pool_does_not_keep_the_process_alive() -> None:
    # MLflow's artifact uploads leave such a pool behind: the exit must stop it, not wait on it.
    program = ("import concurrent.futures\n"
               "from framework.cli.app import _end_process\n"
               "pool = concurrent.futures.ThreadPoolExecutor(1)\n"
               "pool.submit(print, 'uploaded').result()\n"
               "_end_process(3)\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 3 and result.stdout == "uploaded\n"
