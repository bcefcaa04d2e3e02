"""Versions are pinned once, in pyproject.toml; environment.yml installs the same set."""

import re
import tomllib

import yaml

from support import ROOT

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)$")


def project_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"]


def test_every_runtime_dependency_is_pinned_exactly():
    loose = [dep for dep in project_pins() if not PIN.match(dep)]
    assert loose == [], f"pin these with ==: {loose}"


def test_environment_yml_installs_the_pinned_set_and_the_course_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict) and "pip" in item)
    pins = sorted(line for line in pip_section if PIN.match(line))
    assert pins == sorted(project_pins())
    assert "-e ." in pip_section, "environment.yml must install the autograder package itself"
    python = next(item for item in env["dependencies"] if isinstance(item, str) and item.startswith("python="))
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert required == ">=" + python.split("=")[1]


def test_the_installed_torch_is_the_pinned_cpu_build():
    import torch

    pinned = next(dep.split("==")[1] for dep in project_pins() if dep.startswith("torch=="))
    assert torch.__version__.split("+")[0] == pinned, f"installed torch {torch.__version__}, pinned {pinned}"
    assert torch.version.cuda is None, "the course runs on torch's CPU build; this one was built for CUDA"
    pip_section = next(item["pip"] for item in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
                       if isinstance(item, dict) and "pip" in item)
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip_section, "environment.yml installs the CPU build"
