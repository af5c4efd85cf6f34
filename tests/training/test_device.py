"""What the machine is: the CPU description that trial runs and benchmarks record."""

from __future__ import annotations

from pathlib import Path

from framework.training.device import cpu_fields
from framework.training.device import cpu_name


PROCESSOR = """processor\t: {n}
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: {model}
model name\t: Intel(R) Xeon(R) Processor
stepping\t: 2
flags\t\t: fpu sse avx2 {extra}

"""


def cpuinfo(tmp_path: Path, model: int, extra: str = "avx512f") -> Path:
    path = tmp_path / f"cpuinfo-{model}-{extra}"
    path.write_text(PROCESSOR.format(n=0, model=model, extra=extra)
                    + PROCESSOR.format(n=1, model=999, extra="other"))
    return path


def test_the_first_processor_is_read_and_named_with_its_family_model_and_stepping(
        tmp_path: Path) -> None:
    fields = cpu_fields(cpuinfo(tmp_path, 207))
    assert fields["model"] == "207"  # the first block, not the second's 999
    assert fields["flags"] == "fpu sse avx2 avx512f"
    assert cpu_name(fields) == ("Intel(R) Xeon(R) Processor (cpu family 6, model 207, "
                                "stepping 2)")


def test_without_cpuinfo_the_name_falls_back_to_the_platform(tmp_path: Path) -> None:
    assert cpu_fields(tmp_path / "missing") == {}
    assert cpu_name({})  # platform.processor() or machine(): some non-empty name

