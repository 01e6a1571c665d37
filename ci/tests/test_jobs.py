"""The jenkins-job-builder definitions render offline into one folder and one multibranch
project per Jenkinsfile, each discovering branches and pull requests on GitHub."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from ci_jenkinsfiles import JENKINSFILES, REPO

TRAITS = "org.jenkinsci.plugins.github__branch__source."
FOLDER_TRIGGER = "com.cloudbees.hudson.plugins.folder.computed.PeriodicFolderTrigger"


def _job(rendered_jobs, name: str) -> ET.Element:
    return ET.parse(rendered_jobs / name / "config.xml").getroot()


def test_one_folder_and_one_project_per_jenkinsfile(rendered_jobs):
    configs = sorted(p.parent.relative_to(rendered_jobs).as_posix() for p in
                     rendered_jobs.rglob("config.xml"))  # fmt: skip
    assert configs == sorted(["brainscan", *(f"brainscan/{c}" for c in JENKINSFILES)])
    assert _job(rendered_jobs, "brainscan").tag == "com.cloudbees.hudson.plugins.folder.Folder"


@pytest.mark.parametrize("component", sorted(JENKINSFILES))
def test_multibranch_project_runs_the_components_jenkinsfile(rendered_jobs, component):
    job = _job(rendered_jobs, f"brainscan/{component}")
    assert job.tag == "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"
    script_path = job.find("./factory/scriptPath").text
    assert script_path == JENKINSFILES[component]
    assert (REPO / script_path).is_file()


@pytest.mark.parametrize("component", sorted(JENKINSFILES))
def test_github_source_discovers_branches_and_pull_requests(rendered_jobs, component):
    source = _job(rendered_jobs, f"brainscan/{component}").find(".//source")
    assert source.get("class") == "org.jenkinsci.plugins.github_branch_source.GitHubSCMSource"
    assert source.find("repository").text == "brainscan"
    assert source.find("credentialsId").text
    traits = {trait.tag.removeprefix(TRAITS) for trait in source.find("traits")}
    assert {
        "BranchDiscoveryTrait",
        "OriginPullRequestDiscoveryTrait",
        "ForkPullRequestDiscoveryTrait",
    } <= traits
    context = source.find(".//contextLabel").text
    assert context == f"brainscan/{component}"


@pytest.mark.parametrize("component", sorted(JENKINSFILES))
def test_webhook_builds_with_a_daily_scan_as_safety_net(rendered_jobs, component):
    job = _job(rendered_jobs, f"brainscan/{component}")
    trigger = job.find(f"./triggers/{FOLDER_TRIGGER}")
    assert trigger is not None and trigger.find("interval").text == str(24 * 3600 * 1000)
    strategy = job.find(".//orphanedItemStrategy")
    assert strategy.find("pruneDeadBranches").text == "true"
    # Untrusted pull requests (forks without write access) are not built automatically.
    assert job.find(".//ignoreUntrustedChanges").text == "true"


def test_every_jenkinsfile_in_the_repository_has_a_job():
    found = {
        path.relative_to(REPO).as_posix()
        for path in REPO.glob("**/Jenkinsfile")
        if ".venv" not in path.parts and "node_modules" not in path.parts
    }
    assert found == set(JENKINSFILES.values())
